import { request } from 'undici';
import { echoOf, report, streamClock } from './report.mjs';

const clock = streamClock();
const res = await request('https://api.openai.com/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
});
let text = '';
for await (const piece of res.body) {
  clock.chunk();
  text += piece.toString();
}
report({ status: res.statusCode, echo: echoOf(text), ...clock.fields() });
