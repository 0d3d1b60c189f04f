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
import { compareBytewise } from '../render/save-text.js';
import { AsgIndex } from './asg-index.js';
import { C2cIndex } from './c2c-index.js';
import type { CompileError } from './chain-set.js';
import type { CompileCache } from './compile-cache.js';
import { egressRules } from './egress.js';
import { FamilyContext } from './family-context.js';
import { hostAccessRules } from './host-access.js';
import { ingressRules } from './ingress.js';
import { ChainNamer } from './naming.js';
import { hostMatch, layout } from './rule-helpers.js';

export type { CompileError } from './chain-set.js';
export { logPrefix } from './rule-helpers.js';

export type CompiledCell = Readonly<Record<Family, Ruleset>>;

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

function compileFamily(context: FamilyContext, containers: readonly Container[]): Ruleset {
  const { names, chains, config, family } = context;
  const marks = sourceMarks(context, containers);
  const toContainers: Rule[] = [];
  const fromContainers: Rule[] = [];
  const input: Rule[] = [];
  for (const container of containers) {
    const address = context.address(container);
    if (address === undefined) continue;
    const own = hostMatch(family, address);
    const ingress = names.ingress(container.handle);
    chains.define(ingress, `traffic to container ${container.handle}`, () => ingressRules(context, container));
    toContainers.push(rule({ destination: own, target: jump(ingress), origin: layout(`ingress of ${container.handle}`) }));
    const egress = names.egress(container.handle);
    chains.define(egress, `container ${container.handle}`, () => egressRules(context, container));
    for (const name of config.hostInterfaces.length > 0 ? config.hostInterfaces : [undefined]) {
      const outInterface = name === undefined ? undefined : { name, negated: false };
      fromContainers.push(
        rule({ source: own, outInterface, target: jump(egress), origin: layout(`egress of ${container.handle}`) }),
      );
    }
    input.push(rule({ source: own, target: jump(names.hostAccess), origin: layout(`host access of ${container.handle}`) }));
  }
  chains.define(names.forward, 'the forward dispatch', () => [...marks, ...toContainers, ...fromContainers]);
  chains.define(names.input, 'the input dispatch', () => input);
  chains.define(names.hostAccess, 'host access', () => hostAccessRules(context));
  const hook = (chain: string) => rule({ target: jump(chain), origin: layout('hook') });
  return {
    family,
    tables: [
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
  /** What the previous compile built from the same inputs is reused (the agent). */
  readonly cache?: CompileCache;
  /** Merge and drop rules without changing any verdict (src/compile/optimise.ts); default on. */
  readonly optimise?: boolean;
}

export function compileCell(cell: CellPolicy, options: CompileOptions = {}): Result<CompiledCell, CompileError[]> {
  const { names = new ChainNamer(cell.config.chainPrefix), cache, optimise = true } = options;
  const errors: CompileError[] = [];
  const asgs = new AsgIndex(cell.securityGroups);
  const c2c = new C2cIndex(cell.policies, cell.containers, cell.endpoints);
  const containers = [...cell.containers].sort((a, b) => compareBytewise(a.handle, b.handle));
  const [v4, v6] = FAMILIES.map((family) =>
    compileFamily(new FamilyContext(family, cell.config, names, asgs, c2c, errors, cache, optimise), containers),
  ) as [Ruleset, Ruleset];
  cache?.endRound();
  return errors.length > 0 ? fail(errors) : ok({ 4: v4, 6: v6 });
}
