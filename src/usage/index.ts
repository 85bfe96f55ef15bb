export { UsageMeter, stateOf, type Admission, type QuotaState, type Reservation } from './meter.js';
export { periodOf } from './periods.js';
export { readUsageFile, restoredCounts, UsageFileWriter, USAGE_FILE } from './usage-file.js';
