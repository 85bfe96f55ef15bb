import https from 'node:https';
import { echoOf, report } from './report.mjs';

const res = await new Promise((resolve, reject) => {
  const req = https.request('https://api.openai.com/v1/models', { headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}` } }, resolve);
  req.on('error', reject);
  req.end();
});
let body = '';
for await (const piece of res) body += piece;
report({ status: res.statusCode, echo: echoOf(body) });
