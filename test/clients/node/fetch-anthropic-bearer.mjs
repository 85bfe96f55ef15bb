// The Messages API with the key as a bearer token, as gateways and OAuth-style callers send it.
import { echoOf, report } from './report.mjs';

const res = await fetch('https://api.anthropic.com/v1/messages', {
  method: 'POST',
  headers: { authorization: `Bearer ${process.env.ANTHROPIC_API_KEY}`, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
});
report({ status: res.status, echo: echoOf(await res.text()) });
