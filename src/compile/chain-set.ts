// Chains being built for one family, refusing a name that two different owners would share.
import type { ChainRule } from '../ir/ruleset.js';

export interface CompileError {
  readonly message: string;
}

export class ChainSet {
  private readonly owners = new Map<string, string>();
  readonly chains = new Map<string, readonly ChainRule[]>();

  /** `optimise`, when given, rewrites every chain's rules (unless they come optimised already). */
  constructor(
    private readonly errors: CompileError[],
    private readonly optimise?: (rules: readonly ChainRule[]) => readonly ChainRule[],
  ) {}

  /** Define `name` for `owner` unless that owner already has it; `build` runs only when needed. */
  define(name: string, owner: string, build: () => readonly ChainRule[], { optimised = false } = {}): void {
    const existing = this.owners.get(name);
    if (existing === owner) return;
    if (existing !== undefined) {
      this.errors.push({
        message: `chain name ${name} would be shared by ${existing} and ${owner}; rename one or change chain_prefix`,
      });
      return;
    }
    this.owners.set(name, owner);
    const rules = build();
    this.chains.set(name, optimised || this.optimise === undefined ? rules : this.optimise(rules));
  }
}
