// What one compile of a cell can hand to the next: the family shares of each ASG set and the
// rules of its shared chain, reused while the set's groups are the same rule objects (the
// ingest cache keeps an unchanged group's objects). Their text is then rendered once, too.
import { GenerationalCache } from '../memo/generational.js';
import type { FamilyAsgRule } from '../model/asg.js';
import type { Rule } from '../ir/ruleset.js';

export class CompileCache {
  readonly asgShares = new GenerationalCache<string, readonly FamilyAsgRule[]>();
  readonly asgChains = new GenerationalCache<readonly FamilyAsgRule[], readonly Rule[]>();

  /** After each compile: forget what it did not use. */
  endRound(): void {
    this.asgShares.endRound();
    this.asgChains.endRound();
  }
}
