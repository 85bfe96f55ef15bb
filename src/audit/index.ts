export { AuditWriter, type AuditObserver } from './writer.js';
export { readAuditFile, type AuditFile } from './read.js';
export { verifyAuditFiles, describeFinding, type Finding, type Verification } from './verify.js';
export { GENESIS, lineHash, type ChainHead } from './chain.js';
export { AuditWriteFailed } from './errors.js';
export { AUDIT_SCHEMA_VERSION, type AuditEvent, type AuditEventType, type AuditRecord, type Destination, type InjectReason } from './events.js';
