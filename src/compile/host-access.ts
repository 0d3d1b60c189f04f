// What containers may reach on the cell itself (INPUT), the same for every container:
// established flows, IPv6 neighbour discovery and multicast listener reports, DNS, configured
// host services, then reject.
import { type Rule, rule } from '../ir/ruleset.js';
import { ACCEPT } from '../ir/targets.js';
import type { HostService } from '../model/cell.js';
import type { FamilyContext } from './family-context.js';
import { acceptEstablished, addressMatch, layout, protocol, transport } from './rule-helpers.js';

/**
 * What a container must be able to send the cell for IPv6 to work on its link (RFC 4890 4.4.1):
 * router solicitation (133), neighbour solicitation and advertisement (135, 136), and multicast
 * listener reports and done (131, 132, 143), all link-local and never forwarded. Not a router
 * advertisement (134) or a redirect (137): a container is no router.
 */
const LINK_CONTROL = [131, 132, 133, 135, 136, 143];

function service(context: FamilyContext, name: 'tcp' | 'udp', { address, port }: HostService, role: string): Rule[] {
  if (address.family !== context.family) return [];
  return [rule({ destination: addressMatch(address), ...transport(name, port), target: ACCEPT, origin: layout(role) })];
}

export function hostAccessRules(context: FamilyContext): Rule[] {
  const { config } = context;
  const rules: Rule[] = [acceptEstablished()];
  if (context.family === 6) {
    for (const type of LINK_CONTROL) {
      rules.push(
        rule({
          protocol: protocol('ipv6-icmp'),
          matches: [{ kind: 'icmp6', type, negated: false }],
          target: ACCEPT,
          origin: layout('neighbour discovery and multicast listeners'),
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
