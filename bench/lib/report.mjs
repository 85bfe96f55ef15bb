// The markdown report: one table per kind of scenario, and issue #5's targets as ratios from this one run.
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function report(r, quick) {
  let failures = 0;
  let md = `Run ${r.date} on ${r.cores} cores (${r.cpu}), Node ${r.node}${quick ? ' (quick)' : ''}. Command: \`node bench/run.mjs${quick ? ' --quick' : ''}\`.\n\n`;

  md += '| scenario | path | req/s | p50 ms | p99 ms | added p50 ms vs direct | added p99 ms | req/s vs direct | bad |\n|---|---|---|---|---|---|---|---|---|\n';
  for (const [name, byPath] of Object.entries(r.scenarios)) {
    const direct = byPath.direct;
    for (const [kind, x] of Object.entries(byPath)) {
      failures += x.bad;
      md += `| ${name} | ${kind} | ${f(x.rps)} | ${f(x.p50, 2)} | ${f(x.p99, 2)} | ${f(x.p50 - direct.p50, 2)} | ${f(x.p99 - direct.p99, 2)} | ${f((100 * x.rps) / direct.rps)} % | ${x.bad} |\n`;
    }
    const ks = byPath.keyswap;
    for (const peer of ['mitmproxy', 'bare MITM', 'keyswap, audit on tmpfs']) {
      if (byPath[peer]) md += `| ${name} | keyswap ÷ ${peer} | ${f(ks.rps / byPath[peer].rps, 2)}× | | | | | | |\n`;
    }
  }

  md += '\n| path | first request after start, ms | SSE first event p50 ms | SSE event delay p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n';
  for (const [kind, x] of Object.entries(r.sse)) {
    failures += x.bad + (r.firstRequest[kind]?.bad ?? 0);
    md += `| ${kind} | ${f(r.firstRequest[kind]?.ms, 1)} | ${f(x.firstEventP50Ms, 2)} | ${f(x.chunkDelayP50Ms, 2)} | ${f(x.chunkDelayP99Ms, 2)} | ${f(x.chunkDelayMaxMs, 2)} |\n`;
  }

  const mib = r.transfer.bytes / 1048576;
  md += `\n| path | ${mib} MiB upload MB/s | peak RSS MB | ${mib} MiB download MB/s | peak RSS MB |\n|---|---|---|---|---|\n`;
  for (const kind of Object.keys(r.transfer.upload)) {
    const u = r.transfer.upload[kind]; const d = r.transfer.download[kind];
    failures += u.bad + d.bad;
    md += `| ${kind} | ${f(u.mbPerSec)} | ${f(u.peakRssMb)} | ${f(d.mbPerSec)} | ${f(d.peakRssMb)} |\n`;
  }

  md += `\n| path | idle keep-alive connections held | RSS before MB | RSS with them open MB | KB per connection |\n|---|---|---|---|---|\n`;
  for (const [kind, x] of Object.entries(r.idle)) {
    if (kind === 'count') continue;
    failures += x.bad;
    md += `| ${kind} | ${x.open} of ${r.idle.count} | ${f(x.rssBeforeMb)} | ${f(x.rssMb)} | ${f(((x.rssMb - x.rssBeforeMb) * 1024) / Math.max(1, x.open), 1)} |\n`;
  }

  if (r.h2 && r.ws) {
    md += '\n| path | HTTP/2 req/s, concurrency 32 over one connection | p50 ms | p99 ms | WebSocket echo round trip p50 ms | p99 ms | bad |\n|---|---|---|---|---|---|---|\n';
    for (const kind of Object.keys(r.h2)) {
      const h = r.h2[kind]; const w = r.ws[kind];
      failures += h.bad + w.bad;
      md += `| ${kind} | ${f(h.rps)} | ${f(h.p50, 2)} | ${f(h.p99, 2)} | ${f(w.p50, 3)} | ${f(w.p99, 3)} | ${h.bad + w.bad} |\n`;
    }
    if (r.h2.keyswap && r.h2.direct) md += `| keyswap ÷ direct | ${f(r.h2.keyswap.rps / r.h2.direct.rps, 2)}× | | | +${f(r.ws.keyswap.p50 - r.ws.direct.p50, 3)} ms | | |\n`;
  }

  md += `\n${targets(r)}`;
  return { markdown: md, failures };
}

/** Issue #5's targets, each computed from this run. */
function targets(r) {
  const c32 = r.scenarios['keep-alive, concurrency 32'];
  const c1 = r.scenarios['keep-alive, concurrency 1'];
  const ks = 'keyswap';
  const rows = [];
  const row = (target, value, ok) => rows.push(`| ${target} | ${value} | ${ok ? 'met' : 'missed'} |`);
  if (c32.mitmproxy) row('keep-alive req/s ≥ 6× mitmproxy, concurrency 32', `${f(c32[ks].rps / c32.mitmproxy.rps, 1)}×`, c32[ks].rps >= 6 * c32.mitmproxy.rps);
  row('keep-alive req/s ≥ 60 % of direct, concurrency 32', `${f((100 * c32[ks].rps) / c32.direct.rps)} %`, c32[ks].rps >= 0.6 * c32.direct.rps);
  row('added p50 ≤ 0.5 ms, concurrency 1', `+${f(c1[ks].p50 - c1.direct.p50, 2)} ms`, c1[ks].p50 - c1.direct.p50 <= 0.5);
  row('added p99 ≤ 2 ms, concurrency 1', `+${f(c1[ks].p99 - c1.direct.p99, 2)} ms`, c1[ks].p99 - c1.direct.p99 <= 2);
  const extra = r.sse[ks].chunkDelayP99Ms - r.sse.direct.chunkDelayP99Ms;
  row('SSE events forwarded within 1 ms of arrival (p99, vs direct)', `+${f(extra, 2)} ms`, extra <= 1);
  const peak = Math.max(r.transfer.upload[ks].peakRssMb, r.transfer.download[ks].peakRssMb);
  row(`${r.transfer.bytes / 1048576} MiB each way with peak RSS ≤ 150 MB`, `${f(peak)} MB`, peak <= 150);
  const tmp = c32['keyswap, audit on tmpfs'];
  if (tmp) row('group commit keeps ≥ 80 % of the fsync-free throughput, concurrency 32', `${f((100 * c32[ks].rps) / tmp.rps)} %`, c32[ks].rps >= 0.8 * tmp.rps);
  return `| target (issue #5) | this run | verdict |\n|---|---|---|\n${rows.join('\n')}\n`;
}
