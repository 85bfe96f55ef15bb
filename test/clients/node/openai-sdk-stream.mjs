import OpenAI from 'openai';
import { echoOf, report, streamClock } from './report.mjs';

const client = new OpenAI();
const clock = streamClock();
const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
let text = '';
for await (const chunk of stream) {
  clock.chunk();
  text += chunk.choices[0]?.delta.content ?? '';
}
report({ status: 200, echo: echoOf(text), ...clock.fields() });
