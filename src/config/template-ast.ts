/**
 * The closed template expression language of DESIGN.md §4: names, string literals, `+`, filters
 * (`| b64encode`, `| urlencode`, `| sha256`) and functions (`hmac_sha256(key, msg)`, `totp(secret)`).
 * Parsed and checked at load; evaluated by inject/template-eval.ts. No general template engine.
 */
export type TemplateExpr =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'concat'; readonly left: TemplateExpr; readonly right: TemplateExpr }
  | { readonly kind: 'filter'; readonly filter: TemplateFilter; readonly arg: TemplateExpr }
  | { readonly kind: 'call'; readonly fn: TemplateFunction; readonly args: readonly TemplateExpr[] };

export type TemplateFilter = 'b64encode' | 'urlencode' | 'sha256';
export type TemplateFunction = 'hmac_sha256' | 'totp';

/**
 * A whole template: literal text with `{{ expr }}` holes, e.g. `Basic {{ (A + ':' + B) | b64encode }}`.
 */
export type TemplateSegment = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'expr'; readonly expr: TemplateExpr };
