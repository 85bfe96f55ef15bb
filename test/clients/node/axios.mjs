import axios from 'axios';
import { echoOf, report } from './report.mjs';

// axios reads HTTPS_PROXY itself; validateStatus keeps a 401 a result rather than a throw.
const res = await axios.post(
  'https://api.openai.com/v1/chat/completions',
  { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
  { headers: { Authorization: `Bearer ${process.env.OPENAI_API_KEY}` }, responseType: 'text', validateStatus: () => true },
);
report({ status: res.status, echo: echoOf(res.data) });
