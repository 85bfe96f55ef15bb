export { serveMcp, statusText, type McpDeps } from './server.js';
