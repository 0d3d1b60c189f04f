// Traffic to a container: established flows, c2c policies (IPv4 by the source app's mark on
// the overlay, IPv6 by the source app's addresses), the ingress routers on the container's own
// ports, and nothing else. The IPv6 part keeps a container's routable address unreachable
// from outside the foundation (CF dual-stack RFC).
import { comment } from '../extensions/comment.js';
import { limitMatch } from '../extensions/limit.js';
import { markMatch, hex } from '../extensions/mark.js';
import { stateMatch } from '../extensions/state.js';
import { log, reject } from '../extensions/targets.js';
import { type Rule, rule } from '../ir/ruleset.js';
import { ACCEPT, jump } from '../ir/targets.js';
import type { C2cPolicy, Container } from '../model/cell.js';
import type { FamilyContext } from './family-context.js';
import { acceptEstablished, c2cOrigin, deniedLog, layout, logPrefix, transport } from './rule-helpers.js';

/** A c2c policy toward the container, with (IPv6) the chain of its source app's addresses. */
interface IngressPolicy {
  readonly policy: C2cPolicy;
  readonly sourceChain: string | undefined;
}

function c2cRules(context: FamilyContext, { policy, sourceChain }: IngressPolicy): Rule[] {
  const { source, destination } = policy;
  const { protocol: proto, matches } = transport(destination.protocol, destination.ports.start, destination.ports.end);
  const note = comment(`src:${source.appGuid}_dst:${destination.appGuid}`);
  const origin = c2cOrigin(policy);
  if (context.family === 6) {
    return sourceChain === undefined
      ? []
      : [rule({ protocol: proto, matches: [...matches, note], target: jump(sourceChain), origin })];
  }
  const mark = markMatch(source.tag);
  const accept = rule({ protocol: proto, matches: [...matches, mark, note], target: ACCEPT, origin });
  if (!context.config.c2cLogging) return [accept];
  // CF logs new c2c connections (UDP rate-limited) before accepting them.
  const prefix = log(logPrefix(`OK_${hex(source.tag).slice(2).toUpperCase().padStart(4, '0')}`, destination.appGuid));
  const rate = context.config.acceptedUdpLogsPerSec;
  const logged =
    destination.protocol === 'udp'
      ? rule({ protocol: proto, matches: [...matches, mark, limitMatch(rate, 'sec', rate)], target: prefix, origin })
      : rule({
          protocol: proto,
          matches: [...matches, mark, stateMatch('conntrack', ['INVALID', 'NEW', 'UNTRACKED'])],
          target: prefix,
          origin,
        });
  return [logged, accept];
}

/**
 * CF's disable_container_network_policy: everything from another container is accepted (the
 * IPv4 overlay; in IPv6, the containers' prefixes).
 */
function unpolicedContainers(context: FamilyContext): Rule[] {
  const { config, family } = context;
  if (!config.disableContainerNetworkPolicy) return [];
  const sources = family === 4 ? (config.overlayNetwork ? [config.overlayNetwork] : []) : config.containerPrefixes;
  return sources
    .filter((block) => block.family === family)
    .map((block) =>
      rule({ source: { block, negated: false }, target: ACCEPT, origin: layout('container network policy disabled') }),
    );
}

function ingressRules(context: FamilyContext, container: Container, policies: readonly IngressPolicy[]): Rule[] {
  const rules: Rule[] = [acceptEstablished(), ...unpolicedContainers(context)];
  for (const policy of policies) rules.push(...c2cRules(context, policy));
  const tag = context.config.ingressTag;
  // CF's CNI accepts the ingress router's tag on every port and protocol of the container.
  if (context.family === 4 && tag !== undefined && context.config.ingressTagPorts === 'all')
    rules.push(rule({ matches: [markMatch(tag)], target: ACCEPT, origin: layout('ingress router (mark)') }));
  for (const port of container.ports) {
    const { protocol: proto, matches } = transport('tcp', port);
    if (context.family === 4 && tag !== undefined && context.config.ingressTagPorts === 'own') {
      rules.push(
        rule({ protocol: proto, matches: [...matches, markMatch(tag)], target: ACCEPT, origin: layout('ingress router (mark)') }),
      );
    }
    for (const router of context.config.ingressRouters) {
      if (router.family !== context.family) continue;
      rules.push(
        rule({
          source: { block: router, negated: false },
          protocol: proto,
          matches,
          target: ACCEPT,
          origin: layout('ingress router'),
        }),
      );
    }
  }
  if (context.config.c2cLogging)
    rules.push(deniedLog(context.config.deniedLogsPerSec, 'DENY_C2C', container.handle, 'denied ingress log'));
  // IPv6: "administratively prohibited" says a policy refused it, as the RFC's ingress guard does.
  rules.push(
    rule({
      target: context.family === 4 ? context.reject : reject(6, 'icmp6-adm-prohibited'),
      origin: layout('ingress default deny'),
    }),
  );
  return rules;
}

/** Define the chain of traffic to the container, and (IPv6) the address chains of its c2c sources. */
export function defineIngress(context: FamilyContext, container: Container): string {
  const name = context.names.ingress(container.handle);
  const policies = context.c2c.asDestination(container.appGuid).map((policy) => ({
    policy,
    sourceChain: context.family === 6 ? context.appAddresses('from', policy.source.appGuid) : undefined,
  }));
  context.chains.define(name, `traffic to container ${container.handle}`, () => ingressRules(context, container, policies), {
    dependencies: [
      context.config,
      container.ports.join(','),
      ...policies.flatMap(({ policy, sourceChain }) => [policy, sourceChain]),
    ],
  });
  return name;
}
