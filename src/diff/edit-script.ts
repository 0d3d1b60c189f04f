// The shortest edit script between two rule lists (Myers' O(ND) algorithm), bounded: when
// more than `maxEdits` edits are needed, rewriting the whole chain is the better plan anyway.

export interface EditScript {
  /** Indexes into `before` of the rules to delete, ascending. */
  readonly deletions: readonly number[];
  /** Indexes into `after` of the rules to insert, ascending. */
  readonly insertions: readonly number[];
}

export function shortestEdit(before: readonly string[], after: readonly string[], maxEdits: number): EditScript | undefined {
  // Equal heads and tails are the common case (one rule changed): take them off first.
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  )
    tail++;
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  const n = a.length;
  const m = b.length;
  const limit = Math.min(n + m, maxEdits);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= limit; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number));
      let x = down ? (v[offset + k + 1] as number) : (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, offset, d, n, m, head);
    }
  }
  return undefined;
}

function backtrack(trace: readonly Int32Array[], offset: number, steps: number, n: number, m: number, head: number): EditScript {
  const deletions: number[] = [];
  const insertions: number[] = [];
  let x = n;
  let y = m;
  for (let d = steps; d > 0; d--) {
    const v = trace[d] as Int32Array;
    const k = x - y;
    const down = k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number));
    const previousK = down ? k + 1 : k - 1;
    const previousX = v[offset + previousK] as number;
    const previousY = previousX - previousK;
    while (x > previousX && y > previousY) {
      x--;
      y--;
    }
    if (down) insertions.push(head + previousY);
    else deletions.push(head + previousX);
    x = previousX;
    y = previousY;
  }
  return { deletions: deletions.reverse(), insertions: insertions.reverse() };
}
