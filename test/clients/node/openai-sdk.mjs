import OpenAI from 'openai';
import { echoOf, report } from './report.mjs';

const client = new OpenAI(); // OPENAI_API_KEY from the environment, https://api.openai.com
const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const text = completion.choices[0]?.message.content ?? '';
report({ status: 200, echo: echoOf(text) });
