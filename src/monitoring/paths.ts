/** The monitoring API's paths (the reference guide's Django-style trailing slashes), shared with the status page's browser bundle. */
export const MONITORING_PATHS = {
  metrics: '/api/monitoring/websocket/metrics/',
  activeConnections: '/api/monitoring/websocket/active-connections/',
  rejections: '/api/monitoring/websocket/rejections/',
  series: '/api/monitoring/websocket/series/',
} as const;
