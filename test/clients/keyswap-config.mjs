// The keyswap.yaml the matrix serves: the three stand-ins behind their real host names, the env backend, and the
// bindings a user would write for these APIs.

/**
 * @param {{ dir: string, testCaPath: string, ports: { openai: number, anthropic: number, git: number }, keys: Record<string, { placeholder: string }> }} o
 */
export function matrixConfig(o) {
  return `version: 1
listen: 127.0.0.1:0
state_dir: ${o.dir}/state
audit: { path: ${o.dir}/audit.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
upstream:
  extra_ca_file: ${o.testCaPath}
  connect_timeout_seconds: 5
  resolve:
    "api.openai.com:443": "127.0.0.1:${o.ports.openai}"
    "api.anthropic.com:443": "127.0.0.1:${o.ports.anthropic}"
    "github.com:443": "127.0.0.1:${o.ports.git}"
secrets:
  OPENAI_API_KEY:
    placeholder: "${o.keys.OPENAI_API_KEY.placeholder}"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings:
      - { host: api.openai.com, methods: [GET, POST], paths: ["/v1/models", "/v1/chat/completions"] }
  ANTHROPIC_API_KEY:
    placeholder: "${o.keys.ANTHROPIC_API_KEY.placeholder}"
    # The SDK sends x-api-key; gateways and hand-written clients send a bearer token: both are the same key.
    inject:
      - { header: x-api-key, format: "{ANTHROPIC_API_KEY}" }
      - { header: Authorization, format: "Bearer {ANTHROPIC_API_KEY}" }
    bindings:
      - { host: api.anthropic.com, methods: [POST], paths: ["/v1/messages"] }
  GITHUB_TOKEN:
    placeholder: "${o.keys.GITHUB_TOKEN.placeholder}"
    inject: { type: basic }
    bindings:
      - { host: github.com, methods: [GET, POST], paths: ["/keyswap-test/repo.git/info/refs", "/keyswap-test/repo.git/git-upload-pack"] }
`;
}
