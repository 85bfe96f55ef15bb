import { readFileSync } from 'node:fs';

/** Resident memory of a process in MB, from /proc (NaN when unreadable). */
export function rssMb(pid) {
  try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
}

/** Samples a process's RSS every 50 ms while `work` runs; returns work's result and the peak seen. */
export async function withPeakRss(pid, work) {
  let peak = pid ? rssMb(pid) : NaN;
  const timer = pid ? setInterval(() => { peak = Math.max(peak, rssMb(pid)); }, 50) : null;
  try {
    const result = await work();
    if (pid) peak = Math.max(peak, rssMb(pid));
    return { ...result, peakRssMb: peak };
  } finally {
    if (timer) clearInterval(timer);
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return NaN; }
}
