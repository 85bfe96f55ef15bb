import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLAG, frame, literal, rawH2, TYPE } from '../../helpers/h2-frames.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { startReplica, type Replica } from '../../shared/replicas.js';

/*
 * Attack on audit.format: ocsf (src/audit/ocsf.ts). toOcsf looks the request's method up in a plain object literal
 * (HTTP_ACTIVITIES[method] ?? 99): a method named after an Object.prototype member (`constructor`, `toString`,
 * `__proto__`) finds the inherited member instead of undefined. An agent sends such a method over HTTP/2 (nghttp2
 * takes any token; keyswap refuses it with 400 but audits the refusal with the raw method), and the OCSF copy gets
 * an activity_id that is a function (dropped by JSON.stringify) or an object, and a type_uid that is a string of
 * JavaScript source: a record a schema-checking SIEM (Security Lake, OCSF validators) rejects, so the agent's
 * request disappears from the SIEM while the chain still holds it.
 */
describe('OCSF copy: a method named after an Object.prototype member', () => {
  let h: Harness;
  let r: Replica;
  beforeAll(async () => {
    h = await startHarness();
    r = await startReplica(h, 1, {}, {}, ', format: ocsf');
  }, 60_000);
  afterAll(async () => {
    await r?.process?.stop();
    await h?.close();
  });

  it('every OCSF HTTP Activity event has a numeric activity_id and type_uid, whatever the method', async () => {
    const via = { ...h, proxyUrl: r.proxyUrl, proxyPort: Number(new URL(r.proxyUrl).port), caPem: r.caPem };
    for (const [i, method] of ['constructor', 'toString', '__proto__'].entries()) {
      const { socket, frames } = await rawH2(via, 'api.example.test');
      const stream = 1;
      socket.write(frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, stream, Buffer.concat([
        [':method', method], [':scheme', 'https'], [':path', `/v1/ocsf-${i}`], [':authority', 'api.example.test'], ['authorization', `Bearer ${PLACEHOLDER}`],
      ].map(([n, v]) => literal(n as string, v as string)))));
      await waitFor(() => frames.some((f) => f.stream === stream && (f.type === TYPE.HEADERS || f.type === TYPE.RST_STREAM)), 5_000);
      socket.destroy();
    }
    const ocsfFile = r.auditPath.replace(/\.jsonl$/, '.ocsf.jsonl');
    expect(await waitFor(() => r.auditRecords().filter((e) => e.method === '__proto__').length > 0, 5_000)).toBe(true);
    await new Promise((res) => setTimeout(res, 300));
    const events = readFileSync(ocsfFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const http = events.filter((e) => e.class_uid === 4002);
    const odd = http.filter((e) => typeof e.activity_id !== 'number' || typeof e.type_uid !== 'number');
    if (odd.length > 0) console.log(JSON.stringify(odd.map((e) => ({ activity_id: e.activity_id ?? '(missing)', type_uid: e.type_uid, method: (e.http_request as { http_method: string }).http_method }))));
    expect(odd).toEqual([]);
  }, 60_000);
});
