/**
 * Built-in provider presets: how to recognise a provider's key (by variable name, by value shape) and how its API
 * is used (host, header, methods and paths), so `keyswap init --from-env` writes bindings no wider than the API
 * needs. Write methods are included only where the API's everyday use needs them (LLM completions are POSTs);
 * where a write moves money or changes state elsewhere (Stripe, GitHub), reads only, and `keyswap check` says so.
 */
export interface Preset {
  readonly id: string;
  readonly label: string;
  /** Variable names that hold this provider's key. */
  readonly names: RegExp;
  /** The value's shape; null when the provider's keys have no distinctive shape (names only). */
  readonly shape: RegExp | null;
  readonly placeholderPrefix: string;
  /**
   * The kind a key announces in its own prefix (Stripe's sk_live_ or rk_test_, GitHub's ghs_, OpenAI's sk-proj-):
   * its placeholder keeps that prefix, so code that checks which kind of key it holds sees the same answer.
   */
  readonly kindPrefix?: RegExp;
  /** Where the provider's SDKs send the key, each with its rendering (`{NAME}` is the secret); most have one. */
  readonly sites: readonly { readonly header: string; readonly format: string }[];
  readonly bindings: readonly { readonly host: string; readonly methods: readonly string[]; readonly paths: readonly string[] }[];
  /** Base-URL mode: `routes: { <route>: https://<host> }`. */
  readonly route: { readonly name: string; readonly origin: string } | null;
}

// Order matters: more specific shapes first (sk-ant- and sk-or- before OpenAI's sk-).
const PRESETS: readonly Preset[] = [
  {
    id: 'anthropic', label: 'Anthropic', names: /^ANTHROPIC_(API_)?KEY$|^CLAUDE_API_KEY$/, shape: /^sk-ant-[A-Za-z0-9_-]{20,}$/,
    placeholderPrefix: 'sk-ant-',
    // The Python SDK sends x-api-key, the TypeScript SDK `Authorization: Bearer`: one config serves both.
    sites: [{ header: 'x-api-key', format: '{NAME}' }, { header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.anthropic.com', methods: ['GET', 'POST'], paths: ['/v1/messages', '/v1/messages/**', '/v1/models', '/v1/models/**', '/v1/complete'] }],
    route: { name: 'anthropic', origin: 'https://api.anthropic.com' },
  },
  {
    id: 'openrouter', label: 'OpenRouter', names: /^OPENROUTER_(API_)?KEY$/, shape: /^sk-or-[A-Za-z0-9_-]{20,}$/,
    placeholderPrefix: 'sk-or-', sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'openrouter.ai', methods: ['GET', 'POST'], paths: ['/api/v1/**'] }],
    route: { name: 'openrouter', origin: 'https://openrouter.ai' },
  },
  {
    id: 'openai', label: 'OpenAI', names: /^OPENAI_(API_)?KEY$/, shape: /^sk-(proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}$/,
    placeholderPrefix: 'sk-', kindPrefix: /^sk-(proj-|svcacct-|admin-)/, sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.openai.com', methods: ['GET', 'POST'], paths: ['/v1/**'] }],
    route: { name: 'openai', origin: 'https://api.openai.com' },
  },
  {
    id: 'github', label: 'GitHub', names: /^(GITHUB_TOKEN|GH_TOKEN|GITHUB_PAT|GITHUB_API_TOKEN)$/, shape: /^(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})$/,
    placeholderPrefix: 'ghp_', kindPrefix: /^(gh[pousr]_|github_pat_)/, sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.github.com', methods: ['GET'], paths: ['/repos/**', '/user', '/users/**', '/search/**', '/orgs/**'] }],
    route: null,
  },
  {
    id: 'stripe', label: 'Stripe', names: /^STRIPE_(SECRET_|API_|RESTRICTED_)?KEY$/, shape: /^(sk|rk)_(live|test)_[A-Za-z0-9]{20,}$/,
    placeholderPrefix: 'sk_test_', kindPrefix: /^(sk|rk)_(live|test)_/, sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.stripe.com', methods: ['GET'], paths: ['/v1/**'] }],
    route: null,
  },
  {
    id: 'slack', label: 'Slack', names: /^SLACK_(BOT_|USER_|APP_)?TOKEN$/, shape: /^xox[abposr]-[A-Za-z0-9-]{10,}$/,
    placeholderPrefix: 'xoxb-', sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'slack.com', methods: ['GET', 'POST'], paths: ['/api/**'] }],
    route: null,
  },
  {
    id: 'groq', label: 'Groq', names: /^GROQ_(API_)?KEY$/, shape: /^gsk_[A-Za-z0-9]{20,}$/,
    placeholderPrefix: 'gsk_', sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.groq.com', methods: ['GET', 'POST'], paths: ['/openai/v1/**'] }],
    route: { name: 'groq', origin: 'https://api.groq.com' },
  },
  {
    id: 'mistral', label: 'Mistral', names: /^MISTRAL_(API_)?KEY$/, shape: null,
    placeholderPrefix: '', sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [{ host: 'api.mistral.ai', methods: ['GET', 'POST'], paths: ['/v1/**'] }],
    route: { name: 'mistral', origin: 'https://api.mistral.ai' },
  },
  {
    id: 'google', label: 'Google AI (Gemini)', names: /^(GOOGLE_API_KEY|GEMINI_API_KEY|GOOGLE_AI_API_KEY|GOOGLE_GENERATIVE_AI_API_KEY)$/, shape: /^AIza[0-9A-Za-z_-]{35}$/,
    placeholderPrefix: 'AIza', sites: [{ header: 'x-goog-api-key', format: '{NAME}' }],
    bindings: [{ host: 'generativelanguage.googleapis.com', methods: ['GET', 'POST'], paths: ['/v1/**', '/v1beta/**'] }],
    route: { name: 'gemini', origin: 'https://generativelanguage.googleapis.com' },
  },
  {
    id: 'huggingface', label: 'Hugging Face', names: /^(HF_TOKEN|HUGGINGFACE_(API_)?(TOKEN|KEY)|HUGGING_FACE_HUB_TOKEN|HF_API_TOKEN)$/, shape: /^hf_[A-Za-z0-9]{30,}$/,
    placeholderPrefix: 'hf_', sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }],
    bindings: [
      { host: 'huggingface.co', methods: ['GET'], paths: ['/api/**', '/**/resolve/**'] },
      { host: 'router.huggingface.co', methods: ['GET', 'POST'], paths: ['/**'] },
      { host: 'api-inference.huggingface.co', methods: ['GET', 'POST'], paths: ['/**'] },
    ],
    route: null,
  },
];

/** The preset for a variable: by its name first, then by its value's shape; null when neither says. */
export function presetFor(name: string, value: string): Preset | null {
  return PRESETS.find((p) => p.names.test(name)) ?? PRESETS.find((p) => p.shape !== null && p.shape.test(value)) ?? null;
}

/** A provider's label when this looks like one of its real keys (not a placeholder, not empty). */
export function looksLikeRealKey(name: string, value: string): string | null {
  if (value.length < 16 || value.includes('PLACEHOLDER-')) return null;
  const p = PRESETS.find((x) => x.shape !== null && x.shape.test(value)) ?? PRESETS.find((x) => x.names.test(name) && x.shape === null && /^[A-Za-z0-9_-]{24,}$/.test(value));
  return p?.label ?? null;
}

/** The placeholder prefix for a key moved out of an .env: of the key's own kind when its prefix says it. */
export function placeholderPrefixFor(preset: Preset, value: string): string {
  return preset.kindPrefix?.exec(value)?.[0] ?? preset.placeholderPrefix;
}
