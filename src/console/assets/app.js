'use strict';
// The console page: plain DOM, text only (every value is set with textContent, never parsed as HTML: hosts and
// paths come from agents), one event stream (read through fetch) for live decisions and changes, and the control API under /api.

const $ = (id) => document.getElementById(id);
let csrf = '';
let status = null;
const rows = [];
const MAX_ROWS = 500;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c === null || c === undefined ? '' : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function fill(tbody, trs, empty) {
  tbody.replaceChildren(...(trs.length > 0 ? trs : [row([el('span', empty, 'muted')])]));
}

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = text === '';
}

async function api(method, route, body) {
  const res = await fetch(`/api${route}`, {
    method,
    credentials: 'same-origin',
    headers: method === 'GET' ? { 'x-csrf-token': csrf } : { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) {
    document.body.replaceChildren(el('main', 'Not logged in: run `keyswap ui` for a login link.', 'login'));
    throw new Error('not logged in');
  }
  if (!res.ok) {
    showError(json.error || `${method} ${route}: ${res.status}`);
    throw new Error(json.error || String(res.status));
  }
  showError('');
  return json;
}

function button(label, cls, onClick) {
  const b = el('button', label, cls);
  b.type = 'button';
  b.addEventListener('click', () => { onClick().catch(() => {}); });
  return b;
}

function render() {
  if (status === null) return;
  $('version').textContent = `v${status.version}`;
  const ld = status.lockdown;
  $('lockdown').className = `lockdown ${ld ? 'on' : 'off'}`;
  $('lockdown-text').textContent = ld ? `LOCKDOWN since ${ld.since}${ld.reason ? `: ${ld.reason}` : ''}` : 'Lockdown off';
  $('lockdown-toggle').textContent = ld ? 'Lift lockdown' : 'Lock down';
  $('lockdown-reason').hidden = !!ld;

  const approvals = status.approvals;
  $('approvals-count').textContent = approvals.length > 0 ? String(approvals.length) : '';
  fill($('approvals'), approvals.map((a) => {
    const remember = el('select');
    for (const [v, label] of [['', 'this request'], ['600', '+10 min'], ['3600', '+1 h'], ['86400', '+1 day']]) {
      const o = el('option', label);
      o.value = v;
      remember.appendChild(o);
    }
    const answer = el('span');
    answer.append(
      button('Approve', 'approve', () => api('POST', `/v1/approvals/${a.id}/approve`, remember.value === '' ? {} : { remember_seconds: Number(remember.value) }).then(refresh)),
      remember,
      button('Deny', 'deny', () => api('POST', `/v1/approvals/${a.id}/deny`, {}).then(refresh)),
    );
    return row([el('span', a.id, 'mono'), a.client ?? '(any)', `${a.method} ${a.host}${a.port === 443 ? '' : `:${a.port}`}${a.path}`, a.secret_names.join(', '), a.expires_at, answer]);
  }), 'No request is waiting.');
  const access = status.access_requests ?? [];
  $('approvals-count').textContent = approvals.length + access.length > 0 ? String(approvals.length + access.length) : '';
  fill($('access-requests'), access.map((r) => {
    const answer = el('span');
    answer.append(
      el('code', `keyswap approve ${r.id}`, 'mono'),
      button('Decline', 'deny', () => api('POST', `/v1/access-requests/${r.id}/decline`, {}).then(refresh)),
    );
    const binding = `${r.host}${r.port === null ? '' : `:${r.port}`} · ${r.methods ? r.methods.join(' ') : 'any method'} · ${r.paths ? r.paths.join(' ') : 'any path'}`;
    return row([el('span', r.id, 'mono'), r.client ?? '(any)', r.secret, binding, r.reason, answer]);
  }), 'No agent has asked for access.');

  $('client-policy').textContent = status.clients === null ? 'No clients: section: any local process may use keyswap.' : `${status.clients.length} admitted now.`;
  fill($('clients'), (status.clients ?? []).map((c) => row([
    el('span', c.name, 'mono'), c.kind === 'session' ? `session of ${c.parent}` : c.kind, c.secrets.join(', '), c.expires ?? 'never',
    c.kind === 'session' ? `${c.command} (since ${c.started})` : '',
    button(c.kind === 'session' ? 'End session' : 'Revoke', 'deny', async () => {
      if (!confirm(`Revoke ${c.name}? Its connections close at once.`)) return;
      await api('POST', `/v1/clients/${encodeURIComponent(c.name)}/revoke`, {});
      await refresh();
    }),
  ])), 'No client.');
  fill($('revoked'), status.revoked.map((r) => row([r.client, r.at, r.by])), 'None revoked on this keyswap.');

  fill($('usage'), status.usage.map((q) => row([q.name, q.used, q.limit, q.period, q.period_end, el('span', q.state, `state-${q.state}`)])), 'No usage: quotas configured.');
  fill($('rates'), status.bindings.filter((b) => b.rate).map((b) => row([b.secret, b.host, b.rate])), 'No rate: limits configured.');
  fill($('bindings'), status.bindings.map((b) => row([b.secret, `${b.host}${b.port ? `:${b.port}` : ''}`, (b.methods ?? ['any']).join(' '), (b.paths ?? ['any']).join(' '), b.rate ?? '', b.approve ? `approve (${b.approve.timeout_seconds} s)` : ''])), 'No bindings.');

  const secrets = [...new Set(status.bindings.map((b) => b.secret))];
  const pick = $('x-secret');
  if (pick.options.length !== secrets.length + 1) {
    pick.replaceChildren(pick.options[0], ...secrets.map((name) => { const o = el('option', `carrying ${name}'s placeholder`); o.value = name; return o; }));
  }
  $('audit-path').textContent = status.audit.path;
  $('audit-healthy').textContent = status.audit.healthy ? 'yes' : 'NO: requests carrying secrets are refused';
  $('audit-head').textContent = status.audit.head;
  $('audit-anchor').textContent = status.audit.anchor ?? 'none yet';
  renderDecisions();
}

function renderDecisions() {
  const fc = $('f-client').value.trim();
  const fs = $('f-secret').value.trim();
  const fd = $('f-decision').value;
  const shown = rows.filter((r) => (!fc || (r.client ?? '').includes(fc)) && (!fs || (r.secret ?? '').includes(fs)) && (!fd || r.decision.startsWith(fd)));
  fill($('decisions'), shown.slice(-200).reverse().map((r) => {
    const tr = row([r.ts.slice(11, 23), r.client ?? '', r.method, `${r.host}${r.port === 443 ? '' : `:${r.port}`}`, r.path, r.secret ?? '', r.decision, r.reason ?? '']);
    tr.className = `d-${r.decision.split(' ')[0]}`;
    return tr;
  }), 'No decision yet.');
}

async function refresh() {
  status = await api('GET', '/v1/status');
  render();
}

function showPage() {
  const page = (location.hash || '#live').slice(1);
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== `page-${page}`;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.page === page);
}

function onEvent(event, data) {
  if (event === 'changed') {
    refresh().catch(() => {});
    return;
  }
  if (event !== 'decision') return;
  const r = JSON.parse(data);
  if (rows.some((x) => x.id === r.id)) return;
  rows.push(r);
  if (rows.length > MAX_ROWS) rows.shift();
  renderDecisions();
}

// The event stream (text/event-stream) read through fetch, not EventSource: the request must carry the page's token
// header, which EventSource cannot send. Reconnects after a pause when the stream ends.
async function listen() {
  for (;;) {
    try {
      const res = await fetch('/api/v1/events', { credentials: 'same-origin', headers: { 'x-csrf-token': csrf } });
      if (res.status === 401) return;
      $('conn').textContent = 'live';
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data !== '') onEvent(event, data);
        }
      }
    } catch { /* reconnect below */ }
    $('conn').textContent = 'reconnecting…';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function main() {
  csrf = sessionStorage.getItem('keyswap-csrf') || '';
  if (csrf === '') {
    document.body.replaceChildren(el('main', 'Not logged in on this tab: run `keyswap ui` for a login link.', 'login'));
    return;
  }
  showPage();
  window.addEventListener('hashchange', showPage);
  for (const id of ['f-client', 'f-secret', 'f-decision']) $(id).addEventListener('input', renderDecisions);
  $('lockdown-toggle').addEventListener('click', async () => {
    const on = !(status && status.lockdown);
    if (on && !confirm('Lock down? Every request that would carry a secret is refused until lifted.')) return;
    await api('POST', '/v1/lockdown', { on, reason: on ? ($('lockdown-reason').value.trim() || null) : null }).catch(() => {});
    $('lockdown-reason').value = '';
    await refresh();
  });
  $('verify').addEventListener('click', async () => {
    $('audit-verified').textContent = 'verifying…';
    const { verification: v } = await api('POST', '/v1/audit/verify', {});
    $('audit-verified').textContent = `${v.at}: ${v.intact ? 'intact' : 'NOT intact'}, ${v.records} records${v.head ? `, head ${v.head}` : ''}`;
    $('audit-findings').replaceChildren(...v.findings.map((f) => el('li', f)));
  });
  $('explain').addEventListener('submit', async (e) => {
    e.preventDefault();
    const client = $('x-client').value.trim();
    const { lines } = await api('POST', '/v1/explain', { method: $('x-method').value, url: $('x-url').value.trim(), client: client || null, secret: $('x-secret').value || null });
    $('x-out').textContent = lines.join('\n');
  });
  await refresh();
  void listen();
}

main().catch(() => {});
