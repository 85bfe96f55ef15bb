export { KeyswapMetrics, type MetricSources } from './keyswap-metrics.js';
export { startMetricsServer, type MetricsServer } from './server.js';
