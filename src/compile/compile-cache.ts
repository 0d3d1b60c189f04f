// What one compile of a cell can hand to the next: the family shares of each ASG set and the
// rules of its shared chain, reused while the set's groups are the same rule objects (the
// ingest cache keeps an unchanged group's objects). Their text is then rendered once, too.
import { GenerationalCache } from '../memo/generational.js';
import type { FamilyAsgRule } from '../model/asg.js';
import type { IpSet } from '../ir/ipset.js';
import type { ChainRule } from '../ir/ruleset.js';

/** The rules of a chain of ASG allows, and the ipsets they name. */
export interface SharedAsgChain {
  readonly rules: readonly ChainRule[];
  readonly sets: readonly IpSet[];
}

export class CompileCache {
  readonly asgShares = new GenerationalCache<string, readonly FamilyAsgRule[]>();
  readonly asgChains = new GenerationalCache<readonly FamilyAsgRule[], SharedAsgChain>();

  /** After each compile: forget what it did not use. */
  endRound(): void {
    this.asgShares.endRound();
    this.asgChains.endRound();
  }
}
