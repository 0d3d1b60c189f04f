// What the chain builders of one family share: configuration, names, the chains built so far,
// the ASG and c2c indexes, and chains defined once and shared (ASG sets, app address sets).
import type { Family } from '../model/address.js';
import type { FamilyAsgRule } from '../model/asg.js';
import { familyShare } from '../model/asg.js';
import type { AsgcConfig, Container, Lifecycle } from '../model/cell.js';
import { reject } from '../extensions/targets.js';
import { type Rule, rule } from '../ir/ruleset.js';
import { compileAsgRules } from './asg-rules.js';
import type { CompileCache } from './compile-cache.js';
import type { Target } from '../ir/targets.js';
import { ACCEPT } from '../ir/targets.js';
import type { AsgIndex } from './asg-index.js';
import type { C2cIndex } from './c2c-index.js';
import { ChainSet, type CompileError } from './chain-set.js';
import type { ChainNamer } from './naming.js';
import { hostMatch, layout } from './rule-helpers.js';

export class FamilyContext {
  readonly chains: ChainSet;
  private readonly asgRulesBySet = new Map<string, readonly FamilyAsgRule[]>();

  constructor(
    readonly family: Family,
    readonly config: AsgcConfig,
    readonly names: ChainNamer,
    readonly asgs: AsgIndex,
    readonly c2c: C2cIndex,
    errors: CompileError[],
    private readonly cache?: CompileCache,
  ) {
    this.chains = new ChainSet(errors);
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

  /** The rules of the chain a set's containers share (their ASG allows), built once per set. */
  sharedAsgRules(asgRules: readonly FamilyAsgRule[]): readonly Rule[] {
    const build = () => compileAsgRules(asgRules, () => ACCEPT);
    return this.cache ? this.cache.asgChains.get(asgRules, [], build) : build();
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
