// What a compile may hand to the next: each chain, kept while what it was built from is the
// same. A chain declares its dependencies where it is defined; the memo compares them (===)
// and builds again only what changed. Holding (bad input never loosens a rule) asks the memo
// for a chain as last built, whatever it was built from.
import type { IpSet } from '../ir/ipset.js';
import type { ChainRule } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';

/** A chain's rules, and the ipsets they name. */
export interface BuiltChain {
  readonly rules: readonly ChainRule[];
  readonly sets: readonly IpSet[];
}

export interface ChainMemo {
  /**
   * The chain kept from an earlier compile when `dependencies` are the same, else `build()`'s
   * (kept for the next compile, unless `dependencies` is undefined).
   */
  chain(family: Family, name: string, dependencies: readonly unknown[] | undefined, build: () => BuiltChain): BuiltChain;
  /** The chain as last built, whatever it was built from; undefined when never built. */
  lastBuilt(family: Family, name: string): BuiltChain | undefined;
  /** After each compile: forget the chains it did not use. */
  endRound(): void;
}
