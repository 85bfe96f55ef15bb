import { echoOf, report, streamClock } from './report.mjs';

const clock = streamClock();
const res = await fetch('https://api.openai.com/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
});
let text = '';
const decoder = new TextDecoder();
for await (const piece of res.body) {
  clock.chunk();
  text += decoder.decode(piece, { stream: true });
}
report({ status: res.status, echo: echoOf(text), ...clock.fields() });
