import { createHash, createHmac } from 'node:crypto';
import type { TemplateExpr, TemplateSegment } from '../config/index.js';

/** Renders a parsed template. Pure but for the clock, which totp reads from `nowMs`. */
/** Whether a template's rendering changes with the clock (totp): its echoes must be looked for in every window near now. */
export function usesClock(segments: readonly TemplateSegment[]): boolean {
  const walk = (e: TemplateExpr): boolean =>
    e.kind === 'call' ? e.fn === 'totp' || e.args.some(walk) : e.kind === 'filter' ? walk(e.arg) : e.kind === 'concat' ? walk(e.left) || walk(e.right) : false;
  return segments.some((s) => s.kind === 'expr' && walk(s.expr));
}

export function evaluateTemplate(segments: readonly TemplateSegment[], values: ReadonlyMap<string, string>, nowMs: number): string {
  let out = '';
  for (const s of segments) out += s.kind === 'text' ? s.text : evaluate(s.expr, values, nowMs);
  return out;
}

function evaluate(e: TemplateExpr, values: ReadonlyMap<string, string>, nowMs: number): string {
  switch (e.kind) {
    case 'name': return values.get(e.name) ?? '';
    case 'literal': return e.value;
    case 'concat': return evaluate(e.left, values, nowMs) + evaluate(e.right, values, nowMs);
    case 'filter': {
      const v = evaluate(e.arg, values, nowMs);
      switch (e.filter) {
        case 'b64encode': return Buffer.from(v, 'utf8').toString('base64');
        case 'urlencode': return encodeURIComponent(v);
        case 'sha256': return createHash('sha256').update(v, 'utf8').digest('hex');
      }
      break;
    }
    case 'call': {
      const args = e.args.map((a) => evaluate(a, values, nowMs));
      switch (e.fn) {
        case 'hmac_sha256': return createHmac('sha256', args[0] ?? '').update(args[1] ?? '').digest('hex');
        case 'totp': return totp(args[0] ?? '', nowMs);
      }
    }
  }
  throw new Error('unreachable template node');
}

/** RFC 6238 TOTP: 6 digits, 30 s steps, HMAC-SHA1 over the base32-decoded secret. */
export function totp(base32Secret: string, nowMs: number): string {
  const key = base32Decode(base32Secret);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return code.toString().padStart(6, '0');
}

function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const idx = alphabet.indexOf(ch);
    if (idx < 0) continue;
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
