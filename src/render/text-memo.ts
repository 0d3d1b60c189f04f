// The agent's chain memo: each chain kept as its rendered text (rules known only by their
// text), never as IR. Between cycles the agent then holds about the bytes iptables-save would
// print for its rules, not the objects they were compiled from; the text is what the
// reconciler compares and writes anyway.
import type { BuiltChain, ChainMemo } from '../compile/chain-memo.js';
import type { ChainRule } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import { GenerationalCache } from '../memo/generational.js';
import { renderRuleSpec } from './save-text.js';

function asText(rules: readonly ChainRule[], family: Family): ChainRule[] {
  return rules.map((rule) => (rule.kind === 'opaque' ? rule : { kind: 'opaque', text: renderRuleSpec(rule, family) }));
}

export class TextChainMemo implements ChainMemo {
  private readonly families: Record<Family, GenerationalCache<string, BuiltChain>> = {
    4: new GenerationalCache(),
    6: new GenerationalCache(),
  };

  chain(family: Family, name: string, dependencies: readonly unknown[], build: () => BuiltChain): BuiltChain {
    return this.families[family].get(name, dependencies, () => {
      const built = build();
      return { rules: asText(built.rules, family), sets: built.sets };
    });
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
