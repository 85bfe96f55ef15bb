/**
 * Binding path globs: `*` is one non-empty segment, `**` any number of segments (zero included); every other
 * segment matches literally. Compiled once at load.
 */
export type PathGlob = readonly string[];

export function compilePathGlob(pattern: string): PathGlob {
  return pattern.split('/').slice(1);
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
