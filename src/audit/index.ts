export { AuditWriter, type AuditObserver } from './writer.js';
export { readAuditFile, type AuditFile } from './read.js';
export { verifyAuditFiles, describeFinding, type Finding, type Verification } from './verify.js';
export { AuditKey, GENESIS, sha256Hex, type ChainHead } from './chain.js';
export { loadAuditKey } from './key.js';
export { readHeadMark, writeHeadMark } from './head-mark.js';
export { AuditKeyError, AuditLogBusy, AuditWriteFailed } from './errors.js';
export { type AuditEvent, type AuditRecord, type DenyReason, type Destination } from './events.js';
export { rotatedFiles } from './rotation.js';
