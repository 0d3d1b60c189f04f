// The raw table's anti-spoofing chain: before any policy sees a packet, drop one that comes from
// a container with a source address not routed back to that container (another container's
// address, an unassigned one), and one from anywhere else that claims a container's address.
// Per family, where the configuration turns it on (IPv6 by default: nothing else checks it;
// IPv4 has the kernel's rp_filter, which silk turns on for every container interface).
import { SPOOFED } from '../extensions/rpfilter.js';
import { type Rule, type Table, rule } from '../ir/ruleset.js';
import { DROP, jump, RETURN } from '../ir/targets.js';
import type { Container } from '../model/cell.js';
import type { FamilyContext } from './family-context.js';
import { hostMatch, layout } from './rule-helpers.js';

function antiSpoofingRules(context: FamilyContext, containers: readonly Container[]): Rule[] {
  const { config, family } = context;
  const fromContainer = config.containerInterfaces.map((name) => ({ name, negated: false }));
  // Without the containers' prefixes, each local container's own address.
  const prefixes = config.containerPrefixes.filter((block) => block.family === family);
  const claimed =
    prefixes.length > 0
      ? prefixes.map((block) => ({ block, negated: false }))
      : containers.flatMap((container) => {
          const address = context.address(container);
          return address === undefined ? [] : [hostMatch(family, address)];
        });
  return [
    ...fromContainer.map((inInterface) =>
      rule({
        inInterface,
        matches: [SPOOFED],
        target: DROP,
        origin: layout('anti-spoofing: a source not routed back to its container'),
      }),
    ),
    ...fromContainer.map((inInterface) =>
      rule({ inInterface, target: RETURN, origin: layout('anti-spoofing: from a container') }),
    ),
    ...claimed.map((source) =>
      rule({ source, target: DROP, origin: layout("anti-spoofing: a container's address from outside") }),
    ),
  ];
}

/** The raw table of the family, or undefined when anti-spoofing is off for it. */
export function antiSpoofingTable(
  context: FamilyContext,
  containers: readonly Container[],
  addresses: string,
): Table | undefined {
  if (!context.config.antiSpoofing[context.family]) return undefined;
  const chains = context.rawChains;
  const name = context.names.antiSpoofing;
  chains.define(name, 'anti-spoofing', () => antiSpoofingRules(context, containers), {
    dependencies: [context.config, context.config.containerPrefixes.length > 0 ? '' : addresses],
  });
  return {
    name: 'raw',
    chains: [
      { name: 'PREROUTING', policy: 'ACCEPT', rules: [rule({ target: jump(name), origin: layout('hook') })] },
      { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
      ...[...chains.chains].map(([chain, rules]) => ({ name: chain, rules })),
    ],
  };
}
