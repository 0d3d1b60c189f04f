// What the chain builders of one family share: configuration, names, the chains built so far,
// the ASG and c2c indexes, the containers held on their last good ASG chains, and chains
// defined once and shared (ASG sets, app address sets).
import type { Family } from '../model/address.js';
import type { AsgRule, SecurityGroup } from '../model/asg.js';
import type { AsgcConfig, Container, Lifecycle } from '../model/cell.js';
import { reject } from '../extensions/targets.js';
import { type ChainRule, rule } from '../ir/ruleset.js';
import { dropShadowed, optimiseRules } from './optimise.js';
import { compileAsgRules, type SetMaker } from './asg-rules.js';
import type { IpSet } from '../ir/ipset.js';
import { SetRegistry } from './ipsets.js';
import type { Target } from '../ir/targets.js';
import { ACCEPT } from '../ir/targets.js';
import type { AsgIndex } from './asg-index.js';
import type { C2cIndex } from './c2c-index.js';
import type { ChainMemo } from './chain-memo.js';
import { ChainSet, type CompileError } from './chain-set.js';
import type { ChainNamer } from './naming.js';
import { hostMatch, layout } from './rule-helpers.js';

/** The ASG set one container gets: its lifecycle's global groups plus its space's own. */
export interface AsgSet {
  readonly lifecycle: Lifecycle;
  /** The space whose own groups it includes; undefined for the global set. */
  readonly space: string | undefined;
  readonly groups: readonly SecurityGroup[];
}

export class FamilyContext {
  /** The filter table's chains. */
  readonly chains: ChainSet;
  /** The raw table's chains (anti-spoofing). */
  readonly rawChains: ChainSet;
  /** The ipsets of long destination lists, when configured (and optimising). */
  readonly sets: SetRegistry | undefined;

  constructor(
    readonly family: Family,
    readonly config: AsgcConfig,
    readonly names: ChainNamer,
    readonly asgs: AsgIndex,
    readonly c2c: C2cIndex,
    errors: CompileError[],
    /** Handles of containers on held (or default-deny) ASG chains, for both families. */
    readonly held: Set<string>,
    memo?: ChainMemo,
    readonly optimise = true,
  ) {
    const min = config.ipsetMinDestinations;
    this.sets = optimise && min !== undefined ? new SetRegistry(config.chainPrefix, family, min, errors) : undefined;
    this.chains = new ChainSet(
      family,
      errors,
      (sets) => {
        for (const set of sets) this.sets?.add(set);
      },
      optimise ? (rules) => optimiseRules(rules, family) : undefined,
      memo,
    );
    this.rawChains = new ChainSet(family, errors, () => undefined, undefined, memo);
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

  /** The ASG set of a container of this lifecycle and space. */
  asgSet(lifecycle: Lifecycle, spaceGuid: string | undefined): AsgSet {
    const space = this.asgs.setSpace(lifecycle, spaceGuid);
    return { lifecycle, space, groups: this.asgs.groupsFor(lifecycle, space) };
  }

  /** Whether any group of the set has a rule with a destination of this family (known without reading rules). */
  hasRules(set: AsgSet): boolean {
    return set.groups.some((group) => group.shares[this.family].rules);
  }

  /** Everything the compiled rules of a set depend on besides the configuration. */
  setDependencies(set: AsgSet): unknown[] {
    const dependencies: unknown[] = [this.config.ipsetMinDestinations, this.config.chainPrefix];
    for (const group of set.groups) dependencies.push(group.guid, group.name, group.revision);
    return dependencies;
  }

  /** The ASG rules of one set, in order (this reads the groups' rules). */
  asgRules(set: AsgSet): readonly AsgRule[] {
    return set.groups.length === 1 ? (set.groups[0] as SecurityGroup).rules : set.groups.flatMap((group) => group.rules);
  }

  /** The rules of the chain a set's containers share (their ASG allows), optimised. */
  sharedAsgRules(set: AsgSet, usedSets: IpSet[]): readonly ChainRule[] {
    // Merged per ASG rule as they are built; what is left for the chain is shadowing.
    const rules = compileAsgRules(this.asgRules(set), this.family, () => ACCEPT, {
      merge: this.optimise,
      sets: this.setMaker(usedSets),
    });
    return this.optimise ? dropShadowed(rules, this.family) : rules;
  }

  /** Whether the app has known IPv6 addresses (and so a chain of them for IPv6 c2c). */
  hasAppAddresses(appGuid: string): boolean {
    return this.c2c.ipv6Addresses(appGuid).length > 0;
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
    this.chains.define(
      name,
      `the IPv6 addresses of app ${appGuid} (${direction})`,
      () =>
        addresses.map((value) =>
          rule({ [field]: hostMatch(6, value), target: ACCEPT, origin: layout(`c2c ${direction} app ${appGuid}`) }),
        ),
      { dependencies: [addresses.join(' ')] },
    );
    return name;
  }
}
