export { loadConfig, parseConfig } from './load.js';
export { parseHostPort } from './compile-config.js';
export { parseTemplate, templateNames } from './template-parse.js';
export { ConfigError, ConfigErrors, LooseWriteAccessError } from './errors.js';
export type * from './types.js';
export type { TemplateExpr, TemplateFilter, TemplateFunction, TemplateSegment } from './template-ast.js';
export { siteKey, type SiteKey } from './site-key.js';
export { minterEndpoint, minterInputs, signerInputs } from './compile-minter.js';
export { clientPolicy, describeClientPolicy, isOpenToAnyClient, type ClientPolicy } from './client-policy.js';
