// Chains printed as soon as they are built: each kept as its rendered text (rules known only
// by their text), never as IR. A compile then holds about the bytes iptables-save would print
// for its rules, not the objects they were compiled from, which live only while their chain is
// built (and so die young, cheaply); the text is what is printed, compared and written anyway.
// The agent's memo also keeps each chain for the next compile; asgc compile's only prints.
import type { BuiltChain, ChainMemo } from '../compile/chain-memo.js';
import type { ChainRule } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import { GenerationalCache } from '../memo/generational.js';
import { renderRuleSpec } from './save-text.js';

function asText(rules: readonly ChainRule[], family: Family): ChainRule[] {
  return rules.map((rule) => (rule.kind === 'opaque' ? rule : { kind: 'opaque', text: renderRuleSpec(rule, family) }));
}

function printed(family: Family, build: () => BuiltChain): BuiltChain {
  const built = build();
  return { rules: asText(built.rules, family), sets: built.sets };
}

/** Chains printed as they are built, nothing kept (one compile). */
export const printChains: ChainMemo = {
  chain: (family, _name, _dependencies, build) => printed(family, build),
  lastBuilt: () => undefined,
  endRound: () => undefined,
};

export class TextChainMemo implements ChainMemo {
  private readonly families: Record<Family, GenerationalCache<string, BuiltChain>> = {
    4: new GenerationalCache(),
    6: new GenerationalCache(),
  };

  chain(family: Family, name: string, dependencies: readonly unknown[] | undefined, build: () => BuiltChain): BuiltChain {
    if (dependencies === undefined) return printed(family, build);
    return this.families[family].get(name, dependencies, () => printed(family, build));
  }

  lastBuilt(family: Family, name: string): BuiltChain | undefined {
    return this.families[family].last(name);
  }

  endRound(): void {
    this.families[4].endRound();
    this.families[6].endRound();
  }

  /** Chains kept, per family (tests, metrics). */
  get size(): number {
    return this.families[4].size + this.families[6].size;
  }
}
