'use strict';
// The login token travels in the URL's fragment, which the browser never sends: it is read here, taken out of the
// address bar and history, and traded once for the session cookie.
(async () => {
  const status = document.getElementById('login-status');
  const token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, '', '/login');
  if (token === '') {
    status.textContent = 'No login token in this link. Run `keyswap ui` for one.';
    return;
  }
  const res = await fetch('/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
  if (res.ok) {
    // Per origin (this port only), per tab: the API answers only requests that carry it.
    sessionStorage.setItem('keyswap-csrf', (await res.json()).csrf);
    location.replace('/');
    return;
  }
  const body = await res.json().catch(() => ({}));
  status.textContent = body.error || `Login refused (${res.status}).`;
})();
