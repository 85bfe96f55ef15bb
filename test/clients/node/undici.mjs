import { request } from 'undici';
import { echoOf, report } from './report.mjs';

const res = await request('https://api.openai.com/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
});
report({ status: res.statusCode, echo: echoOf(await res.body.text()) });
