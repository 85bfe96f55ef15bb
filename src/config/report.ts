import type { z } from 'zod';
import { rawConfigSchema } from './schema.js';
import type { FieldPath } from './yaml-source.js';

/** How compile steps report a problem: at a field (or its key), in words for the person who wrote the YAML. */
export type Report = (p: FieldPath, problem: string, key?: boolean) => void;

/** A zod issue in the words of a YAML author: the field, what it must be, never zod's own type names. */
export function reportIssue(issue: z.core.$ZodIssue, err: Report, data: unknown): void {
  const p = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) err([...p, key], `unknown key '${key}'${validKeysHint(p)}`, true);
      return;
    case 'invalid_type':
      if (valueAt(data, p) === undefined) err(p, `is required (${article(issue.expected)})`, true);
      else err(p, `must be ${article(issue.expected)}, not ${describe(valueAt(data, p))}`);
      return;
    case 'invalid_value':
      err(p, `must be one of: ${issue.values.map((v) => String(v)).join(', ')}`);
      return;
    case 'too_small':
      err(p, issue.origin === 'array' ? 'must not be empty' : issue.origin === 'string' ? 'must not be empty' : `must be at least ${String(issue.minimum)}`);
      return;
    case 'too_big':
      err(p, `must be at most ${String(issue.maximum)}`);
      return;
    case 'invalid_format':
      // A pattern's own words (`regex(…, 'must be …')`) say more than its name.
      err(p, issue.format === 'regex' && issue.message.startsWith('must ') ? issue.message : `must be a valid ${issue.format}`);
      return;
    case 'invalid_union': {
      // One site or a list of sites: report the branch the value's own shape chose; if none fits, name both.
      const fitting = issue.errors.filter((branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      const branch = fitting[0];
      if (branch === undefined) {
        const expected = issue.errors.flatMap((b) => b.filter((i) => i.code === 'invalid_type').map((i) => article(i.expected)));
        err(p, `must be ${expected.join(' or ')}, not ${describe(valueAt(data, p))}`);
        return;
      }
      for (const inner of branch) reportIssue({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue, err, data);
      return;
    }
    default:
      err(p, issue.message);
  }
}

function validKeysHint(p: FieldPath): string {
  const keys = knownKeys(p);
  return keys ? `; valid keys here: ${keys.join(', ')}` : '';
}

function knownKeys(p: FieldPath): string[] | null {
  const shape = (o: unknown): string[] => Object.keys((o as { shape: Record<string, unknown> }).shape);
  const top = rawConfigSchema.shape;
  if (p.length === 0) return shape(rawConfigSchema);
  if (p.length === 1 && (p[0] === 'cache' || p[0] === 'audit' || p[0] === 'upstream' || p[0] === 'backend' || p[0] === 'timeouts')) {
    return shape((top[p[0]] as unknown as { unwrap(): unknown }).unwrap());
  }
  if (p[0] === 'secrets' && p.length === 2) return ['placeholder', 'inject', 'compose', 'bindings', 'response_scrub', 'honeytoken'];
  if (p[0] === 'secrets' && p[2] === 'inject') return ['type', 'header', 'format', 'template', 'param', 'username', 'content_type', 'injectors'];
  if (p[0] === 'secrets' && p[2] === 'bindings' && p.length === 4) return ['host', 'methods', 'paths', 'port', 'allow_plaintext', 'subdomains', 'rate'];
  if (p[0] === 'backend' && p[1] === 'config') return null;
  return null;
}

function valueAt(data: unknown, p: FieldPath): unknown {
  let v: unknown = data;
  for (const s of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

// Only the kind of value, never the value: a config error can reach the audit log (config_reload), and the
// value could be a placeholder.
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** A type as the YAML author thinks of it, never zod's name for it ("record"). */
function article(expected: string): string {
  if (expected === 'object' || expected === 'record' || expected === 'map') return 'a mapping';
  if (expected === 'array' || expected === 'tuple' || expected === 'set') return 'a list';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
