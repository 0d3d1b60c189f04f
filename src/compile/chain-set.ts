// Chains being built for one family, refusing a name that two different owners would share,
// reusing what a memo kept from an earlier compile.
import type { IpSet } from '../ir/ipset.js';
import type { ChainRule } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import type { BuiltChain, ChainMemo } from './chain-memo.js';

/** The chains a chain's rules jump or go to (of a rule known only by its text, read from it). */
function jumpTargets(rules: readonly ChainRule[]): string[] {
  return rules.flatMap((entry) => {
    if (entry.kind === 'rule') return entry.target?.kind === 'jump' || entry.target?.kind === 'goto' ? [entry.target.chain] : [];
    const match = / -[jg] (\S+)$|^-[jg] (\S+)$/.exec(entry.text);
    return match === null ? [] : [(match[1] ?? match[2]) as string];
  });
}

export interface CompileError {
  readonly message: string;
}

export interface DefineOptions {
  /** The rules come optimised already (the optimiser does not run on them again). */
  readonly optimised?: boolean;
  /** Everything `build` reads, compared (===) with what an earlier compile built the chain from. */
  readonly dependencies?: readonly unknown[];
}

export class ChainSet {
  private readonly owners = new Map<string, string>();
  /** Chains defined as the memo last built them. */
  private readonly held = new Set<string>();
  private readonly sets = new Map<string, readonly string[]>();
  readonly chains = new Map<string, readonly ChainRule[]>();

  /** `optimise`, when given, rewrites every chain's rules (unless they come optimised already). */
  constructor(
    private readonly family: Family,
    private readonly errors: CompileError[],
    /** Where the sets a chain names are registered (those of a kept chain too). */
    private readonly useSets: (sets: readonly IpSet[]) => void,
    private readonly optimise?: (rules: readonly ChainRule[]) => readonly ChainRule[],
    private readonly memo?: ChainMemo,
  ) {}

  /**
   * Define `name` for `owner` unless that owner already has it; `build` runs only when needed
   * and reports the sets its rules name into the array it is given.
   */
  define(name: string, owner: string, build: (sets: IpSet[]) => readonly ChainRule[], options: DefineOptions = {}): void {
    if (!this.claim(name, owner)) return;
    const make = (): BuiltChain => {
      const sets: IpSet[] = [];
      const rules = build(sets);
      return { rules: options.optimised || this.optimise === undefined ? rules : this.optimise(rules), sets };
    };
    this.put(name, this.memo ? this.memo.chain(this.family, name, options.dependencies, make) : make());
  }

  /**
   * Define `name` for `owner` as the memo last built it (bad input must not change it).
   * Returns false, defining nothing, when it was never built.
   */
  hold(name: string, owner: string): boolean {
    const kept = this.memo?.lastBuilt(this.family, name);
    if (kept === undefined) return false;
    if (this.claim(name, owner)) {
      this.put(name, kept);
      this.held.add(name);
    }
    return true;
  }

  /** What held chains jump to and this compile did not define: held as last built too. */
  holdMissingTargets(): void {
    const pending = [...this.held];
    for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
      for (const target of jumpTargets(this.chains.get(name) ?? [])) {
        if (!this.chains.has(target) && this.hold(target, `what held chain ${name} jumps to`)) pending.push(target);
      }
    }
  }

  /** Whether a chain of this name is defined already. */
  has(name: string): boolean {
    return this.owners.has(name);
  }

  private claim(name: string, owner: string): boolean {
    const existing = this.owners.get(name);
    if (existing === owner) return false;
    if (existing !== undefined) {
      this.errors.push({
        message: `chain name ${name} would be shared by ${existing} and ${owner}; rename one or change chain_prefix`,
      });
      return false;
    }
    this.owners.set(name, owner);
    return true;
  }

  /** The names of the ipsets a defined chain's rules name. */
  setsOf(name: string): readonly string[] {
    return this.sets.get(name) ?? [];
  }

  private put(name: string, chain: BuiltChain): void {
    this.chains.set(name, chain.rules);
    if (chain.sets.length > 0)
      this.sets.set(
        name,
        chain.sets.map((set) => set.name),
      );
    this.useSets(chain.sets);
  }
}
