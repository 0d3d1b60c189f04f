// What the chain builders of one family share: configuration, names, the chains built so far,
// the ASG and c2c indexes, and chains defined once and shared (ASG sets, app address sets).
import type { Family } from '../model/address.js';
import type { FamilyAsgRule } from '../model/asg.js';
import { familyShare } from '../model/asg.js';
import type { AsgcConfig, Container, Lifecycle } from '../model/cell.js';
import { reject } from '../extensions/targets.js';
import { type ChainRule, rule } from '../ir/ruleset.js';
import { dropShadowed, optimiseRules } from './optimise.js';
import { compileAsgRules, type SetMaker } from './asg-rules.js';
import type { IpSet } from '../ir/ipset.js';
import { SetRegistry } from './ipsets.js';
import type { CompileCache, SharedAsgChain } from './compile-cache.js';
import type { Target } from '../ir/targets.js';
import { ACCEPT } from '../ir/targets.js';
import type { AsgIndex } from './asg-index.js';
import type { C2cIndex } from './c2c-index.js';
import { ChainSet, type CompileError } from './chain-set.js';
import type { ChainNamer } from './naming.js';
import { hostMatch, layout } from './rule-helpers.js';

export class FamilyContext {
  readonly chains: ChainSet;
  /** The ipsets of long destination lists, when configured (and optimising). */
  readonly sets: SetRegistry | undefined;
  private readonly asgRulesBySet = new Map<string, readonly FamilyAsgRule[]>();

  constructor(
    readonly family: Family,
    readonly config: AsgcConfig,
    readonly names: ChainNamer,
    readonly asgs: AsgIndex,
    readonly c2c: C2cIndex,
    errors: CompileError[],
    private readonly cache?: CompileCache,
    readonly optimise = true,
  ) {
    this.chains = new ChainSet(errors, optimise ? (rules) => optimiseRules(rules, family) : undefined);
    const min = config.ipsetMinDestinations;
    this.sets = optimise && min !== undefined ? new SetRegistry(config.chainPrefix, family, min, errors) : undefined;
  }

  /** What compileAsgRules needs to make sets, each also reported to `used`. */
  setMaker(used: IpSet[]): SetMaker | undefined {
    const registry = this.sets;
    if (registry === undefined) return undefined;
    return {
      minDestinations: registry.minDestinations,
      setFor: (blocks) => {
        const set = registry.setFor(blocks);
        if (set !== undefined) used.push(set);
        return set;
      },
    };
  }

  address(container: Container): bigint | undefined {
    return this.family === 4 ? container.ipv4 : container.ipv6;
  }

  /** REJECT with the family's port-unreachable. */
  get reject(): Target {
    return reject(this.family);
  }

  /** The family's share of the ASG rules of one set (lifecycle + space), in order. */
  asgRulesFor(lifecycle: Lifecycle, setSpace: string | undefined): readonly FamilyAsgRule[] {
    const key = `${this.family}\u0000${lifecycle}\u0000${setSpace ?? ''}`;
    let rules = this.asgRulesBySet.get(key);
    if (rules === undefined) {
      const groups = this.asgs.groupsFor(lifecycle, setSpace);
      const share = () => groups.flatMap((group) => group.rules.flatMap((asg) => familyShare(asg, this.family) ?? []));
      rules = this.cache
        ? this.cache.asgShares.get(
            key,
            groups.map((group) => group.rules),
            share,
          )
        : share();
      this.asgRulesBySet.set(key, rules);
    }
    return rules;
  }

  /** The rules of the chain a set's containers share (their ASG allows), built (and optimised) once per set. */
  sharedAsgRules(asgRules: readonly FamilyAsgRule[]): readonly ChainRule[] {
    const build = (): SharedAsgChain => {
      const sets: IpSet[] = [];
      // Merged per ASG rule as they are built; what is left for the chain is shadowing.
      const rules = compileAsgRules(asgRules, () => ACCEPT, { merge: this.optimise, sets: this.setMaker(sets) });
      return { rules: this.optimise ? dropShadowed(rules, this.family) : rules, sets };
    };
    const dependencies = [this.optimise, this.config.ipsetMinDestinations, this.config.chainPrefix];
    const chain = this.cache ? this.cache.asgChains.get(asgRules, dependencies, build) : build();
    // A chain from the cache brings the sets it names with it.
    for (const set of chain.sets) this.sets?.add(set);
    return chain.rules;
  }

  /**
   * IPv6 c2c: a chain accepting traffic from (-s) or to (-d) any container of the app, shared
   * by every rule that needs it; undefined when the app has no known address.
   */
  appAddresses(direction: 'from' | 'to', appGuid: string): string | undefined {
    const addresses = this.c2c.ipv6Addresses(appGuid);
    if (addresses.length === 0) return undefined;
    const name = direction === 'from' ? this.names.fromApp(appGuid) : this.names.toApp(appGuid);
    const field = direction === 'from' ? 'source' : 'destination';
    this.chains.define(name, `the IPv6 addresses of app ${appGuid} (${direction})`, () =>
      addresses.map((value) =>
        rule({ [field]: hostMatch(6, value), target: ACCEPT, origin: layout(`c2c ${direction} app ${appGuid}`) }),
      ),
    );
    return name;
  }
}
