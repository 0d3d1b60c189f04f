// A container's egress chain, in the order CF's agent uses: established, invalid, outbound
// rate limit, deny networks, c2c to other cells, ASG allows, denied log, reject. Every chain it
// jumps to is defined here, outside the chain's own build, so that a chain kept from an earlier
// compile still finds them.
import { comment } from '../extensions/comment.js';
import { hashlimitMatch } from '../extensions/hashlimit.js';
import { limitMatch } from '../extensions/limit.js';
import { markMatch } from '../extensions/mark.js';
import { stateMatch } from '../extensions/state.js';
import { log } from '../extensions/targets.js';
import type { IpSet } from '../ir/ipset.js';
import { type Rule, rule } from '../ir/ruleset.js';
import { ACCEPT, DROP, goTo, jump } from '../ir/targets.js';
import type { AsgRule } from '../model/asg.js';
import type { C2cPolicy, Container, Lifecycle } from '../model/cell.js';
import { lifecycleOf } from '../model/cell.js';
import { compileAsgRules } from './asg-rules.js';
import type { AsgSet, FamilyContext } from './family-context.js';
import { acceptEstablished, c2cOrigin, deniedLog, layout, logPrefix, protocol, transport } from './rule-helpers.js';

/** What a container's egress chain is made of, besides the configuration. */
interface EgressParts {
  readonly container: Container;
  readonly lifecycle: Lifecycle | undefined;
  /** The chain outbound connections over the limit go to (logging on), else they are rejected here. */
  readonly rateLimitLog: string | undefined;
  /** IPv6 c2c to other cells: each policy with the chain of its destination app's addresses. */
  readonly c2c: readonly { readonly policy: C2cPolicy; readonly chain: string }[];
  /** The shared chain of the container's ASG allows, or its ASG set inlined (logging), or nothing. */
  readonly asgs: { readonly shared: string } | { readonly inline: AsgSet; readonly logChain: string } | undefined;
}

function rateLimit(context: FamilyContext, parts: EgressParts): Rule[] {
  const limit = context.config.outboundConnections;
  if (limit === undefined) return [];
  const matches = [
    stateMatch('conntrack', ['NEW']),
    hashlimitMatch({
      over: 'above',
      count: limit.perSecond,
      unit: 'sec',
      burst: limit.burst,
      modes: ['dstip', 'dstport'],
      name: context.names.egress(parts.container.handle),
      expireMs: limit.expirySeconds * 1000,
    }),
  ];
  // A dry run only logs, and comes back to the rest of the chain (CF's dry_run).
  const target =
    parts.rateLimitLog === undefined ? context.reject : limit.dryRun ? jump(parts.rateLimitLog) : goTo(parts.rateLimitLog);
  return [rule({ protocol: protocol('tcp'), matches, target, origin: layout('outbound rate limit') })];
}

function defineRateLimitLog(context: FamilyContext, container: Container): string {
  const chain = context.names.rateLimitLog(container.handle);
  context.chains.define(
    chain,
    `the rate-limit log of container ${container.handle}`,
    () => [
      deniedLog(context.config.deniedLogsPerSec, 'DENY_ORL', container.handle, 'rate-limit log'),
      ...(context.config.outboundConnections?.dryRun ? [] : [rule({ target: context.reject, origin: layout('rate limited') })]),
    ],
    { dependencies: [context.config] },
  );
  return chain;
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
function c2cToOtherCells(context: FamilyContext, parts: EgressParts): Rule[] {
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
  return parts.c2c.map(({ policy, chain }) => {
    const { protocol: proto, matches } = transport(
      policy.destination.protocol,
      policy.destination.ports.start,
      policy.destination.ports.end,
    );
    const note = comment(`src:${policy.source.appGuid}_dst:${policy.destination.appGuid}`);
    return rule({ protocol: proto, matches: [...matches, note], target: jump(chain), origin: c2cOrigin(policy) });
  });
}

/** The accepted-traffic log chain a container's logged ASG rules go to (CF's netout--<handle>--log). */
function defineAcceptLog(context: FamilyContext, container: Container): string {
  const logChain = context.names.log(container.handle);
  const target = log(logPrefix('OK', container.handle));
  const origin = layout('accepted log');
  const rate = context.config.acceptedUdpLogsPerSec;
  context.chains.define(
    logChain,
    `the accepted-traffic log of container ${container.handle}`,
    () => [
      rule({
        protocol: protocol('udp', true),
        matches: [stateMatch('conntrack', ['INVALID', 'NEW', 'UNTRACKED'])],
        target,
        origin,
      }),
      rule({ protocol: protocol('udp'), matches: [limitMatch(rate, 'sec', rate)], target, origin }),
      rule({ target: ACCEPT, origin }),
    ],
    { dependencies: [context.config] },
  );
  return logChain;
}

function asgAllows(context: FamilyContext, parts: EgressParts, sets: IpSet[]): Rule[] {
  const { asgs } = parts;
  if (asgs === undefined) return [];
  if ('shared' in asgs) return [rule({ target: jump(asgs.shared), origin: layout('asg') })];
  // Logging needs the container's own log prefix, so its ASG rules go in its own chain.
  const targetOf = (asg: AsgRule) => (context.config.asgLogging || asg.log ? goTo(asgs.logChain) : ACCEPT);
  // The chain is optimised as a whole when defined; only the sets must be made here.
  return compileAsgRules(context.asgRules(asgs.inline), context.family, targetOf, {
    merge: context.sets !== undefined,
    sets: context.setMaker(sets),
  });
}

function egressRules(context: FamilyContext, parts: EgressParts, sets: IpSet[]): Rule[] {
  const rules: Rule[] = [
    acceptEstablished(),
    rule({ protocol: protocol('tcp'), matches: [stateMatch('state', ['INVALID'])], target: DROP, origin: layout('invalid') }),
    ...rateLimit(context, parts),
    ...denyNetworks(context, parts.lifecycle),
    ...c2cToOtherCells(context, parts),
    ...asgAllows(context, parts, sets),
  ];
  if (context.config.asgLogging)
    rules.push(deniedLog(context.config.deniedLogsPerSec, 'DENY', parts.container.handle, 'denied log'));
  rules.push(rule({ target: context.reject, origin: layout('default deny') }));
  return rules;
}

/**
 * Define the container's egress chain and everything it jumps to. When a group of its ASG set
 * does not compile, the container keeps its chains as last built (its ASG set chain, or its
 * own chain where the ASG rules are inline), or, never built, gets a default-deny chain until
 * they compile: bad input never loosens a rule.
 */
export function defineEgress(context: FamilyContext, container: Container): { readonly shared?: string } {
  const { config, names, chains, family } = context;
  const name = names.egress(container.handle);
  const owner = `container ${container.handle}`;
  const lifecycle = lifecycleOf(container);
  const set = lifecycle === undefined ? undefined : context.asgSet(lifecycle, container.spaceGuid);
  const withRules = set !== undefined && context.hasRules(set) ? set : undefined;
  const logged = withRules !== undefined && (config.asgLogging || withRules.groups.some((group) => group.shares[family].logs));

  const limit = config.outboundConnections;
  const rateLimitLog =
    limit !== undefined && (limit.logging || limit.dryRun) ? defineRateLimitLog(context, container) : undefined;
  const c2c =
    family === 6
      ? context.c2c.asSource(container.appGuid).flatMap((policy) => {
          const chain = context.appAddresses('to', policy.destination.appGuid);
          return chain === undefined ? [] : [{ policy, chain }];
        })
      : [];
  let asgs: EgressParts['asgs'];
  if (withRules !== undefined && !logged) {
    const shared = names.asgSet(withRules.lifecycle, withRules.space);
    asgs = { shared };
    // A set's chain is shared: defined by the first of its containers.
    if (!chains.has(shared) && !withRules.groups.some((group) => group.broken)) {
      const setOwner =
        withRules.space === undefined
          ? `the global ${withRules.lifecycle} ASGs`
          : `the ${withRules.lifecycle} ASGs of space ${withRules.space}`;
      chains.define(shared, setOwner, (sets) => context.sharedAsgRules(withRules, sets), {
        optimised: true,
        dependencies: context.setDependencies(withRules),
      });
    }
  } else if (withRules !== undefined) {
    asgs = { inline: withRules, logChain: defineAcceptLog(context, container) };
  }

  if (withRules?.groups.some((group) => group.broken)) {
    context.held.add(container.handle);
    if (chains.hold(name, owner)) return asgs !== undefined && 'shared' in asgs ? { shared: asgs.shared } : {};
    chains.define(name, owner, () => [
      rule({ target: context.reject, origin: { kind: 'layout', role: 'default deny until the rules compile' } }),
    ]);
    return {};
  }
  const parts: EgressParts = { container, lifecycle, rateLimitLog, c2c, asgs };
  chains.define(name, owner, (sets) => egressRules(context, parts, sets), {
    dependencies: [
      config,
      lifecycle,
      rateLimitLog,
      ...c2c.flatMap(({ policy, chain }) => [policy, chain]),
      asgs === undefined ? undefined : 'shared' in asgs ? asgs.shared : asgs.logChain,
      ...(asgs !== undefined && 'inline' in asgs ? context.setDependencies(asgs.inline) : []),
    ],
  });
  return asgs !== undefined && 'shared' in asgs ? { shared: asgs.shared } : {};
}
