// A cell's policy -> one filter-table ruleset per family, in the chain layout README describes:
//
//   FORWARD -> <p>forward -> (per container, -s <its address>) <p>o-<container>
//   <p>o-<container>: RELATED,ESTABLISHED accept; INVALID drop; deny networks;
//                     ASG allows (a jump to the chain shared by its space and lifecycle,
//                     or inline when logging needs the container's own log prefix);
//                     denied log; REJECT
import { type Family, FAMILIES, hostCidr } from '../model/address.js';
import type { FamilyAsgRule, SecurityGroup } from '../model/asg.js';
import { familyShare } from '../model/asg.js';
import type { AsgcConfig, CellPolicy, Container, Lifecycle } from '../model/cell.js';
import { lifecycleOf } from '../model/cell.js';
import { type Result, fail, ok } from '../model/result.js';
import { safeText } from '../extensions/comment.js';
import { limitMatch } from '../extensions/limit.js';
import { stateMatch } from '../extensions/state.js';
import { log, reject } from '../extensions/targets.js';
import type { Rule, Ruleset } from '../ir/ruleset.js';
import { rule } from '../ir/ruleset.js';
import { ACCEPT, DROP, goTo, jump } from '../ir/targets.js';
import { compareBytewise } from '../render/save-text.js';
import { compileAsgRules } from './asg-rules.js';
import { ChainNamer } from './naming.js';

export interface CompileError {
  readonly message: string;
}

export type CompiledCell = Readonly<Record<Family, Ruleset>>;

/** A log prefix of at most 28 bytes plus the trailing space, as CF writes them. */
export function logPrefix(tag: string, handle: string): string {
  return `${safeText(`${tag}_${handle}`, 28)} `;
}

/** Which ASGs apply to which containers, as CF's agent assembles them. */
class AsgIndex {
  private readonly global: Record<Lifecycle, SecurityGroup[]> = { running: [], staging: [] };
  private readonly bySpace: Record<Lifecycle, Map<string, SecurityGroup[]>> = { running: new Map(), staging: new Map() };

  constructor(groups: readonly SecurityGroup[]) {
    for (const group of groups) {
      this.add('running', group, group.runningDefault, group.runningSpaceGuids);
      this.add('staging', group, group.stagingDefault, group.stagingSpaceGuids);
    }
  }

  /**
   * The space whose ASG set a container gets: its own when the space has ASGs of its own
   * for the lifecycle, else none (the global set, shared by every such space).
   */
  setSpace(lifecycle: Lifecycle, spaceGuid: string | undefined): string | undefined {
    return spaceGuid !== undefined && this.bySpace[lifecycle].has(spaceGuid) ? spaceGuid : undefined;
  }

  /** Global groups of the lifecycle, then the space's own (a global group is not repeated). */
  groupsFor(lifecycle: Lifecycle, spaceGuid: string | undefined): SecurityGroup[] {
    const own = spaceGuid === undefined ? [] : (this.bySpace[lifecycle].get(spaceGuid) ?? []);
    return [...this.global[lifecycle], ...own];
  }

  private add(lifecycle: Lifecycle, group: SecurityGroup, isDefault: boolean, spaces: readonly string[]): void {
    if (isDefault) {
      this.global[lifecycle].push(group);
      return;
    }
    for (const space of new Set(spaces)) {
      const list = this.bySpace[lifecycle].get(space) ?? [];
      list.push(group);
      this.bySpace[lifecycle].set(space, list);
    }
  }
}

/** Chains being built for one family, refusing a name that two different owners would share. */
class ChainSet {
  private readonly owners = new Map<string, string>();
  readonly chains = new Map<string, Rule[]>();

  constructor(private readonly errors: CompileError[]) {}

  /** Define `name` for `owner` unless that owner already has it; `build` runs only when needed. */
  define(name: string, owner: string, build: () => Rule[]): void {
    const existing = this.owners.get(name);
    if (existing === owner) return;
    if (existing !== undefined) {
      this.errors.push({
        message: `chain name ${name} would be shared by ${existing} and ${owner}; rename one or change chain_prefix`,
      });
      return;
    }
    this.owners.set(name, owner);
    this.chains.set(name, build());
  }
}

function containerAddress(container: Container, family: Family): bigint | undefined {
  return family === 4 ? container.ipv4 : container.ipv6;
}

class FamilyCompiler {
  private readonly chains: ChainSet;
  private readonly asgRulesBySet = new Map<string, FamilyAsgRule[]>();
  private readonly acceptedLogLimit;

  constructor(
    private readonly family: Family,
    private readonly config: AsgcConfig,
    private readonly names: ChainNamer,
    private readonly asgs: AsgIndex,
    errors: CompileError[],
  ) {
    this.chains = new ChainSet(errors);
    this.acceptedLogLimit = limitMatch(config.acceptedUdpLogsPerSec, 'sec', config.acceptedUdpLogsPerSec);
  }

  compile(containers: readonly Container[]): Ruleset {
    const dispatch: Rule[] = [];
    for (const container of containers) {
      const address = containerAddress(container, this.family);
      if (address === undefined) continue;
      const egress = this.names.egress(container.handle);
      this.chains.define(egress, `container ${container.handle}`, () => this.egressRules(container));
      const source = { block: hostCidr({ family: this.family, value: address }), negated: false };
      const origin = { kind: 'layout', role: `egress of ${container.handle}` } as const;
      const interfaces = this.config.hostInterfaces.length > 0 ? this.config.hostInterfaces : [undefined];
      for (const name of interfaces) {
        const outInterface = name === undefined ? undefined : { name, negated: false };
        dispatch.push(rule({ source, ...(outInterface && { outInterface }), target: jump(egress), origin }));
      }
    }
    this.chains.define(this.names.forward, 'the forward dispatch', () => dispatch);
    const hook = rule({ target: jump(this.names.forward), origin: { kind: 'layout', role: 'hook' } });
    return {
      family: this.family,
      tables: [
        {
          name: 'filter',
          chains: [
            { name: 'INPUT', policy: 'ACCEPT', rules: [] },
            { name: 'FORWARD', policy: 'ACCEPT', rules: [hook] },
            { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
            ...[...this.chains.chains].map(([name, rules]) => ({ name, rules })),
          ],
        },
      ],
    };
  }

  private egressRules(container: Container): Rule[] {
    const lifecycle = lifecycleOf(container);
    const rejectAll = reject(this.family);
    const layout = (role: string) => ({ kind: 'layout', role }) as const;
    const rules: Rule[] = [
      rule({ matches: [stateMatch('state', ['RELATED', 'ESTABLISHED'])], target: ACCEPT, origin: layout('established') }),
      rule({
        protocol: { name: 'tcp', negated: false },
        matches: [stateMatch('state', ['INVALID'])],
        target: DROP,
        origin: layout('invalid'),
      }),
    ];
    for (const list of ['always', lifecycle] as const) {
      if (list === undefined) continue;
      for (const block of this.config.denyNetworks[list]) {
        if (block.family !== this.family || block.kind !== 'cidr') continue;
        rules.push(rule({ destination: { block, negated: false }, target: rejectAll, origin: { kind: 'deny-network', list } }));
      }
    }
    const setSpace = lifecycle === undefined ? undefined : this.asgs.setSpace(lifecycle, container.spaceGuid);
    const asgRules = lifecycle === undefined ? [] : this.asgRulesFor(lifecycle, setSpace);
    const logged = this.config.asgLogging || asgRules.some((share) => share.rule.log);
    if (asgRules.length > 0 && !logged) {
      const shared = this.names.asgSet(lifecycle as Lifecycle, setSpace);
      const owner = setSpace === undefined ? `the global ${lifecycle} ASGs` : `the ${lifecycle} ASGs of space ${setSpace}`;
      this.chains.define(shared, owner, () => compileAsgRules(asgRules, () => ACCEPT));
      rules.push(rule({ target: jump(shared), origin: layout('asg') }));
    } else if (asgRules.length > 0) {
      const logChain = this.names.log(container.handle);
      this.chains.define(logChain, `the accepted-traffic log of container ${container.handle}`, () =>
        this.logChainRules(container),
      );
      const logTarget = goTo(logChain);
      rules.push(...compileAsgRules(asgRules, (asg) => (this.config.asgLogging || asg.log ? logTarget : ACCEPT)));
    }
    if (this.config.asgLogging) {
      const rate = this.config.deniedLogsPerSec;
      rules.push(
        rule({
          matches: [limitMatch(rate, 'sec', rate)],
          target: log(logPrefix('DENY', container.handle)),
          origin: layout('denied log'),
        }),
      );
    }
    rules.push(rule({ target: rejectAll, origin: layout('default deny') }));
    return rules;
  }

  /** CF's netout log chain: new non-UDP connections logged, UDP rate-limited, then accepted. */
  private logChainRules(container: Container): Rule[] {
    const target = log(logPrefix('OK', container.handle));
    const origin = { kind: 'layout', role: 'accepted log' } as const;
    const udp = { name: 'udp', negated: false };
    return [
      rule({
        protocol: { ...udp, negated: true },
        matches: [stateMatch('conntrack', ['INVALID', 'NEW', 'UNTRACKED'])],
        target,
        origin,
      }),
      rule({ protocol: udp, matches: [this.acceptedLogLimit], target, origin }),
      rule({ target: ACCEPT, origin }),
    ];
  }

  private asgRulesFor(lifecycle: Lifecycle, spaceGuid: string | undefined): FamilyAsgRule[] {
    const key = `${lifecycle}\u0000${spaceGuid ?? ''}`;
    let rules = this.asgRulesBySet.get(key);
    if (rules === undefined) {
      rules = [];
      for (const group of this.asgs.groupsFor(lifecycle, spaceGuid)) {
        for (const asg of group.rules) {
          const share = familyShare(asg, this.family);
          if (share) rules.push(share);
        }
      }
      this.asgRulesBySet.set(key, rules);
    }
    return rules;
  }
}

export function compileCell(
  cell: CellPolicy,
  names = new ChainNamer(cell.config.chainPrefix),
): Result<CompiledCell, CompileError[]> {
  const errors: CompileError[] = [];
  const asgs = new AsgIndex(cell.securityGroups);
  const containers = [...cell.containers].sort((a, b) => compareBytewise(a.handle, b.handle));
  const [v4, v6] = FAMILIES.map((family) => new FamilyCompiler(family, cell.config, names, asgs, errors).compile(containers)) as [
    Ruleset,
    Ruleset,
  ];
  return errors.length > 0 ? fail(errors) : ok({ 4: v4, 6: v6 });
}
