export { serveMcp, statusText, type McpDeps } from './server.js';
export { maskedJson, maskedToml, parseMcpConfig, planInstall, planUninstall, wrappedCommand, type Classified, type InstallOptions, type InstallPlan, type McpConfigShape, type Move } from './install.js';
export { planCodexInstall, planCodexUninstall } from './codex.js';
export { askAccess, type AccessAsk } from './access-request.js';
