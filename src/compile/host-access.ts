// What containers may reach on the cell itself (INPUT), the same for every container:
// established flows, IPv6 neighbour discovery, DNS, configured host services, then reject.
import { type Rule, rule } from '../ir/ruleset.js';
import { ACCEPT } from '../ir/targets.js';
import type { HostService } from '../model/cell.js';
import type { FamilyContext } from './family-context.js';
import { acceptEstablished, addressMatch, layout, protocol, transport } from './rule-helpers.js';

/** Router and neighbour solicitations and advertisements (RFC 4890 4.4.1): link-local, never forwarded, but they reach the cell. */
const NEIGHBOUR_DISCOVERY = [133, 135, 136];

function service(context: FamilyContext, name: 'tcp' | 'udp', { address, port }: HostService, role: string): Rule[] {
  if (address.family !== context.family) return [];
  return [rule({ destination: addressMatch(address), ...transport(name, port), target: ACCEPT, origin: layout(role) })];
}

export function hostAccessRules(context: FamilyContext): Rule[] {
  const { config } = context;
  const rules: Rule[] = [acceptEstablished()];
  if (context.family === 6) {
    for (const type of NEIGHBOUR_DISCOVERY) {
      rules.push(
        rule({
          protocol: protocol('ipv6-icmp'),
          matches: [{ kind: 'icmp6', type, negated: false }],
          target: ACCEPT,
          origin: layout('neighbour discovery'),
        }),
      );
    }
  }
  for (const address of config.dnsServers) {
    rules.push(
      ...service(context, 'tcp', { address, port: 53 }, 'dns'),
      ...service(context, 'udp', { address, port: 53 }, 'dns'),
    );
  }
  for (const entry of config.hostTcpServices) rules.push(...service(context, 'tcp', entry, 'host tcp service'));
  for (const entry of config.hostUdpServices) rules.push(...service(context, 'udp', entry, 'host udp service'));
  rules.push(rule({ target: context.reject, origin: layout('host default deny') }));
  return rules;
}
