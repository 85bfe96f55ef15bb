import type { InjectSpec } from './types.js';

/** Where a placeholder can be seen in a request: a site's identity, compared with where a scan found one. */
export type SiteKey = `header:${string}` | 'basic' | `query:${string}` | 'path' | 'body' | 'websocket_message';

export function siteKey(site: InjectSpec): SiteKey {
  switch (site.type) {
    case 'header': return `header:${site.header}`;
    case 'basic': return 'basic';
    case 'query': return `query:${site.param}`;
    case 'path': return 'path';
    case 'body': return 'body';
    case 'websocket_message': return 'websocket_message';
  }
}
