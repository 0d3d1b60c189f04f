// Whether a live table, as iptables-save printed it, already holds exactly asgc's
// desired chains and hook rules: one scan of the text, nothing parsed into rules. It only
// ever answers "certainly equal"; anything else (a cosmetic difference included) goes to the
// full parse and diff, which decides what to change. At cell scale this is what keeps a
// read-back cheap: comparing 100,000 lines costs a fraction of parsing them.
import type { Ownership } from '../diff/plan.js';
import { isBuiltinChain } from '../ir/ruleset.js';
import type { TextTable } from '../ir/text-table.js';

interface Expected {
  readonly specs: readonly string[];
  readonly builtin: boolean;
  declared: boolean;
  matched: number;
}

export function ownedStateMatches(saveText: string, desired: TextTable, ownership: Ownership): boolean {
  const { prefix } = ownership;
  const tableName = desired.name;
  const expected = new Map<string, Expected>();
  for (const chain of desired.chains.values()) {
    const builtin = isBuiltinChain(tableName, chain.name);
    expected.set(chain.name, { specs: chain.specs, builtin, declared: builtin, matched: 0 });
  }
  // Any other rule that jumps to an owned chain is a stale hook (conservative: a comment
  // mentioning one also sends the caller to the full diff, which is never wrong).
  const jumpsToOwned = (spec: string) =>
    spec.startsWith(`-j ${prefix}`) ||
    spec.startsWith(`-g ${prefix}`) ||
    spec.includes(` -j ${prefix}`) ||
    spec.includes(` -g ${prefix}`);

  // The chain name is looked up only where it changes (a chain's rules come together).
  const text = saveText;
  let inTable = false;
  let chainName = '';
  let chain: Expected | undefined;
  for (let position = 0; position < text.length;) {
    let end = text.indexOf('\n', position);
    if (end < 0) end = text.length;
    const lineStart = position;
    position = end + 1;
    const first = text.charCodeAt(lineStart);
    if (first === 0x2d /* - */ && inTable && text.startsWith('-A ', lineStart)) {
      const nameStart = lineStart + 3;
      const after = charAt(text, nameStart + chainName.length, end);
      if (
        chainName === '' ||
        (after !== 0x20 && after !== -1) ||
        text.slice(nameStart, nameStart + chainName.length) !== chainName
      ) {
        let nameEnd = text.indexOf(' ', nameStart);
        if (nameEnd < 0 || nameEnd > end) nameEnd = end;
        chainName = text.slice(nameStart, nameEnd);
        chain = expected.get(chainName);
      }
      const specStart = Math.min(nameStart + chainName.length + 1, end);
      if (chain === undefined) {
        if (chainName.startsWith(prefix) || (isBuiltinChain(tableName, chainName) && jumpsToOwned(text.slice(specStart, end))))
          return false;
        continue;
      }
      if (chain.matched < chain.specs.length) {
        // asgc's hooks are the first rules of a built-in chain, its own chains hold only its rules.
        const spec = chain.specs[chain.matched] as string;
        // (A slice is a view, and === on it is a memcmp: faster than startsWith at an offset.)
        if (end - specStart !== spec.length || text.slice(specStart, end) !== spec) return false;
        chain.matched++;
      } else if (!chain.builtin || jumpsToOwned(text.slice(specStart, end))) {
        return false;
      }
      continue;
    }
    const line = text.slice(lineStart, end);
    if (line.startsWith('*')) {
      inTable = line === `*${tableName}`;
      continue;
    }
    if (!inTable || line === '' || line === 'COMMIT' || line.startsWith('#')) continue;
    if (line.startsWith(':')) {
      const name = line.slice(1, line.indexOf(' '));
      const entry = expected.get(name);
      if (entry !== undefined) entry.declared = true;
      else if (name.startsWith(prefix)) return false;
      continue;
    }
    // Rule counters, or anything else unexpected: not certainly equal.
    return false;
  }
  for (const entry of expected.values()) if (!entry.declared || entry.matched !== entry.specs.length) return false;
  return true;
}

/** The code unit at `index`, or -1 at the end of the line. */
function charAt(text: string, index: number, lineEnd: number): number {
  return index >= lineEnd ? -1 : text.charCodeAt(index);
}
