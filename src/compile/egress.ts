// A container's egress chain, in the order CF's agent uses: established, invalid, outbound
// rate limit, deny networks, c2c to other cells, ASG allows, denied log, reject.
import { comment } from '../extensions/comment.js';
import { hashlimitMatch } from '../extensions/hashlimit.js';
import { limitMatch } from '../extensions/limit.js';
import { markMatch } from '../extensions/mark.js';
import { stateMatch } from '../extensions/state.js';
import { log } from '../extensions/targets.js';
import { type Rule, rule } from '../ir/ruleset.js';
import { ACCEPT, DROP, goTo, jump } from '../ir/targets.js';
import type { AsgRule } from '../model/asg.js';
import type { Container, Lifecycle } from '../model/cell.js';
import { lifecycleOf } from '../model/cell.js';
import { compileAsgRules } from './asg-rules.js';
import type { FamilyContext } from './family-context.js';
import { acceptEstablished, c2cOrigin, deniedLog, layout, logPrefix, protocol, transport } from './rule-helpers.js';

function rateLimit(context: FamilyContext, container: Container): Rule[] {
  const limit = context.config.outboundConnections;
  if (limit === undefined) return [];
  const name = context.names.egress(container.handle);
  const matches = [
    stateMatch('conntrack', ['NEW']),
    hashlimitMatch({
      over: 'above',
      count: limit.perSecond,
      unit: 'sec',
      burst: limit.burst,
      modes: ['dstip', 'dstport'],
      name,
      expireMs: limit.expirySeconds * 1000,
    }),
  ];
  let target = context.reject;
  if (context.config.asgLogging) {
    const chain = context.names.rateLimitLog(container.handle);
    context.chains.define(chain, `the rate-limit log of container ${container.handle}`, () => [
      deniedLog(context.config.deniedLogsPerSec, 'DENY_ORL', container.handle, 'rate-limit log'),
      rule({ target: context.reject, origin: layout('rate limited') }),
    ]);
    target = goTo(chain);
  }
  return [rule({ protocol: protocol('tcp'), matches, target, origin: layout('outbound rate limit') })];
}

function denyNetworks(context: FamilyContext, lifecycle: Lifecycle | undefined): Rule[] {
  const rules: Rule[] = [];
  for (const list of ['always', lifecycle] as const) {
    if (list === undefined) continue;
    for (const block of context.config.denyNetworks[list]) {
      if (block.family !== context.family || block.kind !== 'cidr') continue;
      rules.push(
        rule({ destination: { block, negated: false }, target: context.reject, origin: { kind: 'deny-network', list } }),
      );
    }
  }
  return rules;
}

/**
 * c2c traffic to containers on other cells passes the source's egress; the destination's
 * ingress decides. IPv4: marked traffic to the overlay (CF). IPv6: the policy's ports to the
 * destination app's addresses.
 */
function c2cToOtherCells(context: FamilyContext, container: Container): Rule[] {
  if (context.family === 4) {
    const overlay = context.config.overlayNetwork;
    if (overlay === undefined) return [];
    return [
      rule({
        destination: { block: overlay, negated: false },
        matches: [markMatch(0, undefined, true)],
        target: ACCEPT,
        origin: layout('c2c over the overlay'),
      }),
    ];
  }
  return context.c2c.asSource(container.appGuid).flatMap((policy) => {
    const chain = context.appAddresses('to', policy.destination.appGuid);
    if (chain === undefined) return [];
    const { protocol: proto, matches } = transport(
      policy.destination.protocol,
      policy.destination.ports.start,
      policy.destination.ports.end,
    );
    const note = comment(`src:${policy.source.appGuid}_dst:${policy.destination.appGuid}`);
    return [rule({ protocol: proto, matches: [...matches, note], target: jump(chain), origin: c2cOrigin(policy) })];
  });
}

function asgAllows(context: FamilyContext, container: Container, lifecycle: Lifecycle | undefined): Rule[] {
  if (lifecycle === undefined) return [];
  const setSpace = context.asgs.setSpace(lifecycle, container.spaceGuid);
  const asgRules = context.asgRulesFor(lifecycle, setSpace);
  if (asgRules.length === 0) return [];
  const logged = context.config.asgLogging || asgRules.some((share) => share.rule.log);
  if (!logged) {
    const shared = context.names.asgSet(lifecycle, setSpace);
    const owner = setSpace === undefined ? `the global ${lifecycle} ASGs` : `the ${lifecycle} ASGs of space ${setSpace}`;
    context.chains.define(shared, owner, () => context.sharedAsgRules(asgRules), { optimised: true });
    return [rule({ target: jump(shared), origin: layout('asg') })];
  }
  // Logging needs the container's own log prefix, so its ASG rules go in its own chain.
  const logChain = context.names.log(container.handle);
  const target = log(logPrefix('OK', container.handle));
  const origin = layout('accepted log');
  const udp = protocol('udp');
  const rate = context.config.acceptedUdpLogsPerSec;
  context.chains.define(logChain, `the accepted-traffic log of container ${container.handle}`, () => [
    rule({
      protocol: protocol('udp', true),
      matches: [stateMatch('conntrack', ['INVALID', 'NEW', 'UNTRACKED'])],
      target,
      origin,
    }),
    rule({ protocol: udp, matches: [limitMatch(rate, 'sec', rate)], target, origin }),
    rule({ target: ACCEPT, origin }),
  ]);
  const targetOf = (asg: AsgRule) => (context.config.asgLogging || asg.log ? goTo(logChain) : ACCEPT);
  // The chain is optimised as a whole when defined; only the sets must be made here.
  return compileAsgRules(asgRules, targetOf, { merge: context.sets !== undefined, sets: context.setMaker([]) });
}

export function egressRules(context: FamilyContext, container: Container): Rule[] {
  const lifecycle = lifecycleOf(container);
  const rules: Rule[] = [
    acceptEstablished(),
    rule({ protocol: protocol('tcp'), matches: [stateMatch('state', ['INVALID'])], target: DROP, origin: layout('invalid') }),
    ...rateLimit(context, container),
    ...denyNetworks(context, lifecycle),
    ...c2cToOtherCells(context, container),
    ...asgAllows(context, container, lifecycle),
  ];
  if (context.config.asgLogging) rules.push(deniedLog(context.config.deniedLogsPerSec, 'DENY', container.handle, 'denied log'));
  rules.push(rule({ target: context.reject, origin: layout('default deny') }));
  return rules;
}
