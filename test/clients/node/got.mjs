import got from 'got';
import { echoOf, report } from './report.mjs';

const res = await got.post('https://api.openai.com/v1/chat/completions', {
  headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}` },
  json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
  throwHttpErrors: false,
});
report({ status: res.statusCode, echo: echoOf(res.body) });
