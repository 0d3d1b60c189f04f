// The agent never loosens rules because of bad input. A container whose ASGs cannot be
// compiled keeps the chains it had (its egress chain, its ASG chain, its log chains); a
// container never synced before gets a default-deny egress chain (REJECT only) until its
// rules compile. Pure: desired IR + what was last applied -> the IR to apply.
import { reject } from '../extensions/targets.js';
import { byName, type IpSet } from '../ir/ipset.js';
import { type Chain, type ChainRule, type Ruleset, rule } from '../ir/ruleset.js';

export interface HeldChains {
  /** Chains to keep as last applied; an egress chain with no previous version becomes default-deny. */
  readonly chains: ReadonlySet<string>;
  /** Which of them are egress chains. */
  readonly egress: ReadonlySet<string>;
}

function jumpTargets(rules: readonly ChainRule[]): string[] {
  return rules.flatMap((entry) =>
    entry.kind === 'rule' && (entry.target?.kind === 'jump' || entry.target?.kind === 'goto') ? [entry.target.chain] : [],
  );
}

export function holdChains(desired: Ruleset, previous: Ruleset | undefined, held: HeldChains): Ruleset {
  if (held.chains.size === 0) return desired;
  const [table, ...otherTables] = desired.tables;
  if (table === undefined) return desired;
  const before = new Map(
    (previous?.tables.find((candidate) => candidate.name === table.name)?.chains ?? []).map((chain) => [chain.name, chain]),
  );
  const result = new Map(table.chains.map((chain) => [chain.name, chain]));
  const pending: Chain[] = [];
  for (const name of held.chains) {
    const old = before.get(name);
    if (old) {
      result.set(name, old);
      pending.push(old);
    } else if (held.egress.has(name)) {
      result.set(name, {
        name,
        rules: [
          rule({ target: reject(desired.family), origin: { kind: 'layout', role: 'default deny until the rules compile' } }),
        ],
      });
    } else {
      result.delete(name);
    }
  }
  // What a kept chain jumps to must exist: take it from the last applied state where the new
  // one dropped it.
  while (pending.length > 0) {
    for (const target of jumpTargets((pending.pop() as Chain).rules)) {
      if (result.has(target)) continue;
      const old = before.get(target);
      if (old) {
        result.set(target, old);
        pending.push(old);
      }
    }
  }
  const chains = [...result.values()];
  const sets = setsNamedBy(chains, [...(desired.sets ?? []), ...(previous?.sets ?? [])]);
  return { ...desired, tables: [{ ...table, chains }, ...otherTables], sets };
}

/** The sets the chains name, from the first of `known` that defines each (a kept chain's come from before). */
function setsNamedBy(chains: readonly Chain[], known: readonly IpSet[]): IpSet[] {
  const named = new Set<string>();
  for (const chain of chains)
    for (const entry of chain.rules)
      if (entry.kind === 'rule') for (const match of entry.matches) if (match.kind === 'set') named.add(match.name);
  const sets = new Map<string, IpSet>();
  for (const set of known) if (named.has(set.name) && !sets.has(set.name)) sets.set(set.name, set);
  return [...sets.values()].sort(byName);
}
