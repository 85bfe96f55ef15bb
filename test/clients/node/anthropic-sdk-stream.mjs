import Anthropic from '@anthropic-ai/sdk';
import { echoOf, report, streamClock } from './report.mjs';

const client = new Anthropic();
const clock = streamClock();
const stream = client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
let text = '';
stream.on('text', (delta) => {
  clock.chunk();
  text += delta;
});
await stream.finalMessage();
report({ status: 200, echo: echoOf(text), ...clock.fields() });
