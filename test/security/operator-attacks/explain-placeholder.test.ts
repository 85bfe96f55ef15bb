import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { control } from './util.js';

/*
 * Attack (goal 4): the console's explain (POST /api/v1/explain, the same handler as the control socket's) places a
 * secret's placeholder into the request itself ("as if it carried SECRET's placeholder") and promises never to
 * answer with one. For a path-site secret and a base-URL route URL, the placeholder becomes the route name, and
 * the refusal line quotes it back to the page.
 */

const BOT_PH = 'sk-PLACEHOLDER-ATK28-BOT-0123456789ab';
const SECRETS = `
  BOT_TOKEN:
    placeholder: "${BOT_PH}"
    inject: { type: path }
    bindings: [ { host: api.example.test, paths: ["/*/sendMessage"] } ]
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: explain never answers with a placeholder', () => {
  it('a base-URL route URL with a path-site secret: no line holds the placeholder', async () => {
    h = await startHarness({ secrets: SECRETS, secretValues: { BOT_TOKEN: '123:bot-real-value' }, top: 'routes: { api: "https://api.example.test" }' });
    const answers: string[] = [];
    for (const url of ['http://127.0.0.1:14322/p', 'http://127.0.0.1:14322/p/', 'http://localhost:14322/p', 'https://api.example.test/', 'http://127.0.0.1:14322/p/api']) {
      const r = await control(h, 'POST', '/v1/explain', { method: 'POST', url, secret: 'BOT_TOKEN' });
      expect(r.status).toBe(200);
      answers.push(...(r.body.lines as string[]));
    }
    expect(answers.filter((l) => l.includes('PLACEHOLDER'))).toEqual([]);
  });
});
