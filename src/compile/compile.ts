// A cell's policy -> one filter-table ruleset per family, in the chain layout README describes:
//
//   FORWARD -> <p>forward: IPv4 c2c source marks; then, for every container,
//                -d <address> -> <p>i-<container>   (what may reach it), then for every one
//                -s <address> -> <p>o-<container>   (where it may go: ASGs)
//   Traffic between two containers of the cell meets its destination's ingress chain first:
//   c2c is decided there, not by the source's ASGs (as over CF's overlay).
//   INPUT   -> <p>input: per container -s <address> -> <p>host (what it may reach on the cell)
import { type Family, FAMILIES } from '../model/address.js';
import type { CellPolicy, Container } from '../model/cell.js';
import { type Result, fail, ok } from '../model/result.js';
import { comment } from '../extensions/comment.js';
import { type Rule, type Ruleset, rule } from '../ir/ruleset.js';
import { jump } from '../ir/targets.js';
import { compareBytewise } from '../model/order.js';
import { AsgIndex } from './asg-index.js';
import { C2cIndex } from './c2c-index.js';
import type { CompileError } from './chain-set.js';
import type { ChainMemo } from './chain-memo.js';
import { antiSpoofingTable } from './anti-spoofing.js';
import { defineEgress } from './egress.js';
import { FamilyContext } from './family-context.js';
import { hostAccessRules } from './host-access.js';
import { defineIngress } from './ingress.js';
import { ChainNamer } from './naming.js';
import { hostMatch, layout } from './rule-helpers.js';

export type { CompileError } from './chain-set.js';
export { logPrefix } from './rule-helpers.js';

/** IPv4 c2c: traffic from a policy's source app carries the app's tag as its mark over the overlay. */
function sourceMarks(context: FamilyContext, containers: readonly Container[]): Rule[] {
  if (context.family !== 4) return [];
  return containers.flatMap((container) => {
    const tag = context.c2c.sourceTag(container.appGuid);
    if (tag === undefined || container.ipv4 === undefined) return [];
    return [
      rule({
        source: hostMatch(4, container.ipv4),
        matches: [comment(`src:${container.appGuid}`)],
        target: { kind: 'MARK', value: tag, mask: 0xffffffff },
        origin: layout(`c2c source mark of ${container.handle}`),
      }),
    ];
  });
}

/** What the compile made for a container in one family. */
export interface ContainerChains {
  /** The chains only it uses (ingress, egress, logs). */
  readonly chains: readonly string[];
  /** The chain of its ASG set, shared with the containers of its space and lifecycle. */
  readonly asgChain?: string;
  /** The ipsets its chains and its ASG chain name. */
  readonly sets: readonly string[];
}

/** Per container handle, its own chains in each family it has an address in. */
export type CellManifest = ReadonlyMap<string, Readonly<Partial<Record<Family, ContainerChains>>>>;

function compileFamily(
  context: FamilyContext,
  containers: readonly Container[],
  manifest: Map<string, Partial<Record<Family, ContainerChains>>>,
): Ruleset {
  const { names, chains, config, family } = context;
  const dispatched: {
    readonly container: Container;
    readonly address: bigint;
    readonly ingress: string;
    readonly egress: string;
  }[] = [];
  for (const container of containers) {
    const address = context.address(container);
    if (address === undefined) continue;
    const ingress = defineIngress(context, container);
    const { shared } = defineEgress(context, container);
    const egress = names.egress(container.handle);
    dispatched.push({ container, address, ingress, egress });
    const entry = manifest.get(container.handle) ?? {};
    const own = [ingress, egress, names.log(container.handle), names.rateLimitLog(container.handle)].filter((chain) =>
      chains.chains.has(chain),
    );
    const sets = [...new Set([...own, ...(shared === undefined ? [] : [shared])].flatMap((chain) => chains.setsOf(chain)))];
    entry[family] = { chains: own, ...(shared !== undefined && { asgChain: shared }), sets: sets.sort() };
    manifest.set(container.handle, entry);
  }
  const interfaces = config.hostInterfaces.length > 0 ? config.hostInterfaces : [undefined];
  const forward = (): Rule[] => [
    ...sourceMarks(context, containers),
    ...dispatched.map(({ container, address, ingress }) =>
      rule({ destination: hostMatch(family, address), target: jump(ingress), origin: layout(`ingress of ${container.handle}`) }),
    ),
    ...dispatched.flatMap(({ container, address, egress }) =>
      interfaces.map((name) =>
        rule({
          source: hostMatch(family, address),
          outInterface: name === undefined ? undefined : { name, negated: false },
          target: jump(egress),
          origin: layout(`egress of ${container.handle}`),
        }),
      ),
    ),
  ];
  // What a container sends to the cell itself is known by the interface it comes in on, whatever
  // its source address (link-local too); where those interfaces are not configured, by its address.
  const input = (): Rule[] =>
    config.containerInterfaces.length > 0
      ? config.containerInterfaces.map((name) =>
          rule({
            inInterface: { name, negated: false },
            target: jump(names.hostAccess),
            origin: layout('host access of containers'),
          }),
        )
      : dispatched.map(({ container, address }) =>
          rule({
            source: hostMatch(family, address),
            target: jump(names.hostAccess),
            origin: layout(`host access of ${container.handle}`),
          }),
        );
  // The dispatch changes only when containers (or the c2c tags they carry) come, go or move.
  const addresses = dispatched.map(({ container, address }) => `${container.handle} ${address}`).join(' ');
  const tags = family === 4 ? containers.map((container) => `${context.c2c.sourceTag(container.appGuid) ?? ''}`).join(' ') : '';
  chains.define(names.forward, 'the forward dispatch', forward, { dependencies: [config, addresses, tags] });
  chains.define(names.input, 'the input dispatch', input, {
    dependencies: [config, config.containerInterfaces.length > 0 ? '' : addresses],
  });
  const raw = antiSpoofingTable(context, containers, addresses);
  chains.define(names.hostAccess, 'host access', () => hostAccessRules(context), { dependencies: [config] });
  // A chain held as last built finds what it jumps to as last built too, where this compile made none.
  chains.holdMissingTargets();
  const hook = (chain: string) => rule({ target: jump(chain), origin: layout('hook') });
  return {
    family,
    tables: [
      ...(raw === undefined ? [] : [raw]),
      {
        name: 'filter',
        chains: [
          { name: 'INPUT', policy: 'ACCEPT', rules: [hook(names.input)] },
          { name: 'FORWARD', policy: 'ACCEPT', rules: [hook(names.forward)] },
          { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
          ...[...chains.chains].map(([name, rules]) => ({ name, rules })),
        ],
      },
    ],
    ...(context.sets && { sets: context.sets.sets }),
  };
}

export interface CompileOptions {
  readonly names?: ChainNamer;
  /** Chains kept from earlier compiles of the same cell, reused where their inputs did not change (the agent). */
  readonly memo?: ChainMemo;
  /** Merge and drop rules without changing any verdict (src/compile/optimise.ts); default on. */
  readonly optimise?: boolean;
}

export interface CompiledCell extends Readonly<Record<Family, Ruleset>> {
  /** Containers whose ASGs do not compile: held on their chains as last built, or default deny. */
  readonly held: readonly string[];
  readonly manifest: CellManifest;
}

export function compileCell(cell: CellPolicy, options: CompileOptions = {}): Result<CompiledCell, CompileError[]> {
  const { names = new ChainNamer(cell.config.chainPrefix), memo, optimise = true } = options;
  const errors: CompileError[] = [];
  const asgs = new AsgIndex(cell.securityGroups);
  const c2c = new C2cIndex(cell.policies, cell.containers, cell.endpoints);
  const containers = [...cell.containers].sort((a, b) => compareBytewise(a.handle, b.handle));
  const held = new Set<string>();
  const manifest = new Map<string, Partial<Record<Family, ContainerChains>>>();
  const [v4, v6] = FAMILIES.map((family) =>
    compileFamily(new FamilyContext(family, cell.config, names, asgs, c2c, errors, held, memo, optimise), containers, manifest),
  ) as [Ruleset, Ruleset];
  memo?.endRound();
  names.endRound();
  return errors.length > 0 ? fail(errors) : ok({ 4: v4, 6: v6, held: [...held].sort(compareBytewise), manifest });
}
