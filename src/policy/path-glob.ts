/**
 * Binding path globs: `*` is one non-empty segment, `**` any number of segments (zero included); every other
 * segment matches literally. Compiled once at load.
 */
export type PathGlob = readonly string[];

export function compilePathGlob(pattern: string): PathGlob {
  return pattern.split('/').slice(1);
}

/**
 * Request paths the upstream might read differently from us are never in scope: dot segments, encoded dots or
 * slashes, and backslashes. `/v1/ok/../admin` must not match `/v1/ok/**` and then be resolved by the upstream to
 * `/admin` with a secret attached.
 */
export function isAmbiguousPath(path: string): boolean {
  if (!path.startsWith('/')) return true;
  if (path.includes('\\')) return true;
  if (path.includes('%')) {
    const lower = path.toLowerCase();
    if (lower.includes('%2e') || lower.includes('%2f') || lower.includes('%5c') || lower.includes('%00')) return true;
  }
  for (const seg of path.split('/')) if (seg === '.' || seg === '..') return true;
  return false;
}

export function matchPathGlob(glob: PathGlob, path: string): boolean {
  return matchFrom(glob, 0, path.split('/').slice(1), 0);
}

function matchFrom(glob: PathGlob, gi: number, segs: readonly string[], si: number): boolean {
  for (; gi < glob.length; gi++, si++) {
    const g = glob[gi];
    if (g === '**') {
      // Bounded by glob length × segment count; globs are short and few.
      for (let k = si; k <= segs.length; k++) if (matchFrom(glob, gi + 1, segs, k)) return true;
      return false;
    }
    const s = segs[si];
    if (s === undefined) return false;
    if (g === '*') {
      if (s === '') return false;
    } else if (g !== s) {
      return false;
    }
  }
  return si === segs.length;
}
