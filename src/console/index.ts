export { startConsole, type RunningConsole } from './server.js';
