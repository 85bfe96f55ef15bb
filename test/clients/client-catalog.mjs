// The matrix: every client the test runs under `keyswap run`, what it talks to, and what it needs installed.
// A client whose needs are missing is skipped with the reason printed, never silently.

const PY = '/usr/bin/python3'; // Debian's python with Debian's packages, not whatever python is first on PATH

/** @type {import('./client-catalog.d.mts').ClientSpec[]} */
export const CLIENTS = [
  { name: 'node openai SDK', api: 'openai', cmd: ['node', 'node/openai-sdk.mjs'], needs: [{ npm: 'openai' }] },
  { name: 'node openai SDK stream', api: 'openai', stream: true, cmd: ['node', 'node/openai-sdk-stream.mjs'], needs: [{ npm: 'openai' }] },
  { name: 'node @anthropic-ai/sdk', api: 'anthropic', cmd: ['node', 'node/anthropic-sdk.mjs'], needs: [{ npm: '@anthropic-ai/sdk' }] },
  { name: 'node @anthropic-ai/sdk stream', api: 'anthropic', stream: true, cmd: ['node', 'node/anthropic-sdk-stream.mjs'], needs: [{ npm: '@anthropic-ai/sdk' }] },
  { name: 'node fetch', api: 'openai', cmd: ['node', 'node/fetch.mjs'], needs: [] },
  { name: 'node fetch stream', api: 'openai', stream: true, cmd: ['node', 'node/fetch-stream.mjs'], needs: [] },
  { name: 'node fetch anthropic bearer', api: 'anthropic', cmd: ['node', 'node/fetch-anthropic-bearer.mjs'], needs: [] },
  { name: 'node undici (global)', api: 'openai', cmd: ['node', 'node/undici.mjs'], needs: [{ npm: 'undici' }] },
  { name: 'node undici (global) stream', api: 'openai', stream: true, cmd: ['node', 'node/undici-stream.mjs'], needs: [{ npm: 'undici' }] },
  { name: 'node axios 1.21', api: 'openai', cmd: ['node', 'node/axios.mjs'], needs: [{ npm: 'axios' }] },
  // 1.16.0 is the last axios that sends an https request to an http proxy in absolute form, in the clear; 1.16.1 tunnels.
  { name: 'node axios 1.16.0 (absolute-form)', api: 'openai', cmd: ['node', 'node/axios-1.16.mjs'], needs: [{ npm: 'axios-1.16' }] },
  { name: 'node got', api: 'openai', cmd: ['node', 'node/got.mjs'], needs: [{ npm: 'got' }] },
  { name: 'node node-fetch@2', api: 'openai', cmd: ['node', 'node/node-fetch.mjs'], needs: [{ npm: 'node-fetch' }] },
  { name: 'node https.request', api: 'openai', cmd: ['node', 'node/https-request.mjs'], needs: [] },
  { name: 'python requests', api: 'openai', cmd: [PY, 'python/requests_chat.py'], needs: [{ cmd: PY }, { python: 'requests' }] },
  { name: 'python requests stream', api: 'openai', stream: true, cmd: [PY, 'python/requests_stream.py'], needs: [{ cmd: PY }, { python: 'requests' }] },
  { name: 'python httpx sync', api: 'openai', cmd: [PY, 'python/httpx_sync.py'], needs: [{ cmd: PY }, { python: 'httpx' }] },
  { name: 'python httpx stream', api: 'openai', stream: true, cmd: [PY, 'python/httpx_stream.py'], needs: [{ cmd: PY }, { python: 'httpx' }] },
  { name: 'python httpx async', api: 'openai', cmd: [PY, 'python/httpx_async.py'], needs: [{ cmd: PY }, { python: 'httpx' }] },
  { name: 'python aiohttp', api: 'openai', cmd: [PY, 'python/aiohttp_chat.py'], needs: [{ cmd: PY }, { python: 'aiohttp' }] },
  { name: 'python aiohttp stream', api: 'openai', stream: true, cmd: [PY, 'python/aiohttp_stream.py'], needs: [{ cmd: PY }, { python: 'aiohttp' }] },
  { name: 'python urllib.request', api: 'openai', cmd: [PY, 'python/urllib_models.py'], needs: [{ cmd: PY }] },
  { name: 'python openai SDK', api: 'openai', cmd: [PY, 'python/openai_sdk.py'], needs: [{ cmd: PY }, { python: 'openai', why: 'not packaged in Debian, and PyPI is not reachable from CI' }] },
  { name: 'python anthropic SDK', api: 'anthropic', cmd: [PY, 'python/anthropic_sdk.py'], needs: [{ cmd: PY }, { python: 'anthropic', why: 'not packaged in Debian, and PyPI is not reachable from CI' }] },
  { name: 'curl', api: 'openai', cmd: ['sh', 'shell/curl.sh'], needs: [{ cmd: 'curl' }] },
  { name: 'curl stream', api: 'openai', stream: true, cmd: ['bash', 'shell/curl-stream.sh'], needs: [{ cmd: 'curl' }, { cmd: 'bash' }] },
  { name: 'curl anthropic', api: 'anthropic', cmd: ['sh', 'shell/curl-anthropic.sh'], needs: [{ cmd: 'curl' }] },
  { name: 'wget', api: 'openai', cmd: ['sh', 'shell/wget.sh'], needs: [{ cmd: 'wget' }] },
  { name: 'git ls-remote', api: 'git', cmd: ['sh', 'shell/git-ls-remote.sh'], needs: [{ cmd: 'git' }] },
  { name: 'git clone', api: 'git', cmd: ['sh', 'shell/git-clone.sh'], needs: [{ cmd: 'git' }] },
  { name: 'ruby Net::HTTP', api: 'openai', cmd: ['ruby', 'ruby/net_http.rb'], needs: [{ cmd: 'ruby' }] },
  { name: 'perl LWP', api: 'openai', cmd: ['perl', 'perl/lwp.pl'], needs: [{ cmd: 'perl' }, { perl: 'LWP::Protocol::https' }] },
  { name: 'php curl', api: 'openai', cmd: ['php', 'php/curl.php'], needs: [{ cmd: 'php' }, { php: 'curl' }] },
  { name: 'php file_get_contents (stream context proxy)', api: 'openai', cmd: ['php', 'php/file-get-contents.php'], needs: [{ cmd: 'php' }, { php: 'openssl' }] },
  // Built once before the clients run (offline, standard library only); `go` here is the built binary.
  { name: 'go net/http', api: 'openai', cmd: ['go-client'], needs: [{ cmd: 'go' }] },
];
