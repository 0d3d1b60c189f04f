// Runs of rules that each match one host address and nothing else (the per-container dispatch
// of asgc-forward: a thousand `-d <container> -j ...`): indexed by address, so a packet (or a
// box of them) meets only its own address's rules. Shared by the evaluator and the review's walk.
import type { Chain, ChainRule } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';

export interface DispatchRun {
  readonly start: number;
  readonly end: number;
  readonly field: 'source' | 'destination';
  /** Host address -> positions of its rules in the run, ascending. */
  readonly positions: ReadonlyMap<bigint, readonly number[]>;
  /** Some rule of the run jumps or goes to a chain. */
  readonly jumps: boolean;
}

/** Shorter runs are walked: an index would not pay for itself. */
const MIN_DISPATCH_RUN = 8;

function hostField(rule: ChainRule, family: Family): { field: 'source' | 'destination'; value: bigint } | undefined {
  if (rule.kind !== 'rule' || rule.matches.length > 0 || rule.protocol || rule.inInterface || rule.outInterface) return undefined;
  const fields = (['source', 'destination'] as const).filter((field) => rule[field] !== undefined);
  const field = fields.length === 1 ? fields[0] : undefined;
  const condition = field === undefined ? undefined : rule[field];
  if (field === undefined || condition === undefined || condition.negated || condition.block.kind !== 'cidr') return undefined;
  const block = condition.block;
  if (block.family !== family || block.prefixLength !== (family === 4 ? 32 : 128)) return undefined;
  return { field, value: block.address };
}

/** For every rule position inside a long enough run, the run (undefined elsewhere; undefined: no run at all). */
export function dispatchRuns(chain: Chain, family: Family): (DispatchRun | undefined)[] | undefined {
  const hosts = chain.rules.map((rule) => hostField(rule, family));
  const runs: (DispatchRun | undefined)[] = new Array(chain.rules.length);
  let found = false;
  let start = 0;
  while (start < hosts.length) {
    const first = hosts[start];
    let end = start + 1;
    while (first !== undefined && end < hosts.length && hosts[end]?.field === first.field) end++;
    if (first !== undefined && end - start >= MIN_DISPATCH_RUN) {
      const positions = new Map<bigint, number[]>();
      for (let index = start; index < end; index++) {
        const value = (hosts[index] as { value: bigint }).value;
        const list = positions.get(value);
        if (list === undefined) positions.set(value, [index]);
        else list.push(index);
      }
      const jumps = chain.rules
        .slice(start, end)
        .some((rule) => rule.kind === 'rule' && (rule.target?.kind === 'jump' || rule.target?.kind === 'goto'));
      runs.fill({ start, end, field: first.field, positions, jumps }, start, end);
      found = true;
    }
    start = end;
  }
  return found ? runs : undefined;
}
