/** OpenSSH-style wildcard match: `*` any run, `?` one character; case-insensitive. */
export function wildcardMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  // iterative glob with backtracking on the last '*'
  let pi = 0, ti = 0, star = -1, mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) { pi++; ti++; continue; }
    if (pi < p.length && p[pi] === '*') { star = pi++; mark = ti; continue; }
    if (star >= 0) { pi = star + 1; ti = ++mark; continue; }
    return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * A pattern list (`a*,!b,c`, or words of a `Host` line): true when some
 * positive pattern matches and no negated one does (OpenSSH's rule).
 */
export function patternListMatch(patterns: readonly string[], text: string): boolean {
  let positive = false;
  for (const raw of patterns) {
    if (raw === '') continue;
    if (raw.startsWith('!')) {
      if (wildcardMatch(raw.slice(1), text)) return false;
    } else if (wildcardMatch(raw, text)) {
      positive = true;
    }
  }
  return positive;
}
