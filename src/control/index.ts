export { handleControl, json, type AuditCheck, type ControlDeps, type ExplainQuery } from './api.js';
export { Approvals, type PendingApproval } from './approvals.js';
export { DecisionFeed, type DecisionRow, type FeedMessage } from './feed.js';
export { ControlError, Operator, type Actor } from './operator.js';
export { OPERATOR_FILE, readOperatorFile } from './operator-file.js';
export { callControl, CONTROL_SOCKET, ControlUnavailable, controlSocketPath, openControl, startControlSocket, type ControlSocket } from './socket.js';
export { AccessRequests, type PendingAccess } from './access-requests.js';
