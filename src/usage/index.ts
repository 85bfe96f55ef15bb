export { UsageMeter, quotasMatching, stateOf, type Admission, type QuotaState, type Quotas, type Reservation } from './meter.js';
export { RateLimiter, type Rate, type RateGate, type Taken } from './rate-limiter.js';
export { SharedStateUnavailable } from './unavailable.js';
export { periodOf } from './periods.js';
export { readUsageFile, restoredCounts, UsageFileWriter, USAGE_FILE } from './usage-file.js';
