import Anthropic from '@anthropic-ai/sdk';
import { echoOf, report } from './report.mjs';

const client = new Anthropic(); // ANTHROPIC_API_KEY from the environment (this SDK version sends it as Authorization: Bearer)
const message = await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
const text = message.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
report({ status: 200, echo: echoOf(text) });
