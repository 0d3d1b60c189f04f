// fast-check generators of IR rules, over everything the renderer can print.
import fc from 'fast-check';
import { comment } from '../../src/extensions/comment.js';
import { limitMatch } from '../../src/extensions/limit.js';
import { log } from '../../src/extensions/targets.js';
import { stateMatch } from '../../src/extensions/state.js';
import { CONNTRACK_STATES, HASHLIMIT_MODES, type Match, RATE_UNITS } from '../../src/ir/matches.js';
import { hashlimitMatch } from '../../src/extensions/hashlimit.js';
import { markMatch } from '../../src/extensions/mark.js';
import type { Rule } from '../../src/ir/ruleset.js';
import type { Target } from '../../src/ir/targets.js';
import { ADDRESS_BITS, cidr, type Family, range } from '../../src/model/address.js';

const address = (family: Family) => fc.bigInt({ min: 0n, max: (1n << BigInt(ADDRESS_BITS[family])) - 1n });

export const cidrBlock = (family: Family) =>
  fc
    .tuple(address(family), fc.integer({ min: 0, max: ADDRESS_BITS[family] }))
    .map(([value, prefix]) => cidr(family, value, prefix));

const rangeBlock = (family: Family) =>
  fc.tuple(address(family), address(family)).map(([a, b]) => (a <= b ? range(family, a, b) : range(family, b, a)));

const port = fc.integer({ min: 0, max: 65535 });
const portCondition = fc
  .tuple(port, port, fc.boolean())
  .map(([a, b, negated]) => ({ start: Math.min(a, b), end: Math.max(a, b), negated }));
const text = fc.string({ maxLength: 40, unit: 'grapheme' });

export const userChain = fc.stringMatching(/^asgc-[a-z0-9-]{1,20}$/);

export function matchArbitrary(family: Family): fc.Arbitrary<Match> {
  const icmp: fc.Arbitrary<Match> =
    family === 4
      ? fc
          .record({
            kind: fc.constant('icmp' as const),
            type: fc.integer({ min: 0, max: 255 }),
            code: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
            negated: fc.boolean(),
          })
          .map(({ code, ...rest }) => (code === undefined ? rest : { ...rest, code }))
      : fc
          .record({
            kind: fc.constant('icmp6' as const),
            type: fc.integer({ min: 0, max: 255 }),
            code: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
            negated: fc.boolean(),
          })
          .map(({ code, ...rest }) => (code === undefined ? rest : { ...rest, code }));
  return fc.oneof(
    fc
      .record({
        name: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_.-]{0,30}$/),
        directions: fc.array(fc.constantFrom('src' as const, 'dst' as const), { minLength: 1, maxLength: 3 }),
        negated: fc.boolean(),
      })
      .map((fields) => ({ kind: 'set' as const, ...fields })),
    fc
      .tuple(
        fc.constantFrom('tcp' as const, 'udp' as const),
        fc.option(portCondition, { nil: undefined }),
        fc.option(portCondition, { nil: undefined }),
      )
      .map(([kind, sport, dport]) => ({
        kind,
        ...(sport && { sport }),
        ...(dport && { dport }),
      })),
    fc
      .record({
        direction: fc.constantFrom('sports' as const, 'dports' as const, 'ports' as const),
        ports: fc.array(
          fc.tuple(port, port).map(([a, b]) => (a === b ? { start: a, end: a } : { start: Math.min(a, b), end: Math.max(a, b) })),
          { minLength: 1, maxLength: 7 },
        ),
        negated: fc.boolean(),
      })
      .map((fields) => ({ kind: 'multiport' as const, ...fields })),
    icmp,
    fc
      .tuple(
        fc.option(rangeBlock(family), { nil: undefined }),
        fc.option(rangeBlock(family), { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
      )
      .filter(([source, destination]) => source !== undefined || destination !== undefined)
      .map(([source, destination, sn, dn]) => ({
        kind: 'iprange' as const,
        ...(source && { source: { block: source, negated: sn } }),
        ...(destination && { destination: { block: destination, negated: dn } }),
      })),
    text.map(comment),
    fc
      .tuple(fc.subarray([...CONNTRACK_STATES].slice(0, 5), { minLength: 1 }), fc.boolean())
      .map(([states, negated]) => stateMatch('state', states, negated)),
    fc
      .tuple(fc.subarray([...CONNTRACK_STATES], { minLength: 1 }), fc.boolean())
      .map(([states, negated]) => stateMatch('conntrack', states, negated)),
    fc
      .tuple(fc.integer({ min: 1, max: 10000 }), fc.constantFrom(...RATE_UNITS), fc.integer({ min: 1, max: 10000 }))
      .map(([count, unit, burst]) => limitMatch(count, unit, burst)),
    fc
      .tuple(fc.nat(0xffffffff), fc.constantFrom(0xffffffff, 0xffff, 0xff00, 0), fc.boolean())
      .map(([value, mask, negated]) => markMatch(value, mask, negated)),
    fc
      .record({
        over: fc.constantFrom('upto' as const, 'above' as const),
        count: fc.integer({ min: 1, max: 10000 }),
        unit: fc.constantFrom(...RATE_UNITS),
        burst: fc.integer({ min: 1, max: 10000 }),
        modes: fc.subarray([...HASHLIMIT_MODES]),
        name: fc.stringMatching(/^[a-z][a-z0-9-]{0,27}$/),
        expireMs: fc.integer({ min: 1, max: 3_600_000 }),
      })
      .map(hashlimitMatch),
  );
}

export function targetArbitrary(family: Family): fc.Arbitrary<Target> {
  const rejects =
    family === 4
      ? ['icmp-port-unreachable', 'icmp-host-prohibited', 'icmp-admin-prohibited', 'tcp-reset']
      : ['icmp6-port-unreachable', 'icmp6-adm-prohibited', 'icmp6-no-route', 'tcp-reset'];
  return fc.oneof(
    fc
      .constantFrom('ACCEPT' as const, 'DROP' as const, 'RETURN' as const)
      .map((verdict) => ({ kind: 'verdict' as const, verdict })),
    userChain.map((chain) => ({ kind: 'jump' as const, chain })),
    userChain.map((chain) => ({ kind: 'goto' as const, chain })),
    fc.constantFrom(...rejects).map((w) => ({ kind: 'REJECT' as const, with: w })),
    fc
      .tuple(text, fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }))
      .map(([prefix, level]) => ({ ...log(prefix), ...(level !== undefined && { level }) })),
    fc.tuple(fc.nat(0xffffffff), fc.nat(0xffffffff)).map(([value, mask]) => ({ kind: 'MARK' as const, value, mask })),
  );
}

export function ruleArbitrary(family: Family): fc.Arbitrary<Rule> {
  const protocols =
    family === 4 ? ['tcp', 'udp', 'icmp', 'sctp', 'gre', '253'] : ['tcp', 'udp', 'ipv6-icmp', 'sctp', 'gre', '253'];
  const iface = fc.tuple(fc.stringMatching(/^[a-z0-9]{1,14}\+?$/), fc.boolean()).map(([name, negated]) => ({ name, negated }));
  return fc
    .record({
      source: fc.option(fc.tuple(cidrBlock(family), fc.boolean()), { nil: undefined }),
      destination: fc.option(fc.tuple(cidrBlock(family), fc.boolean()), { nil: undefined }),
      inInterface: fc.option(iface, { nil: undefined }),
      outInterface: fc.option(iface, { nil: undefined }),
      protocol: fc.option(fc.tuple(fc.constantFrom(...protocols), fc.boolean()), { nil: undefined }),
      matches: fc.array(matchArbitrary(family), { maxLength: 4 }),
      target: fc.option(targetArbitrary(family), { nil: undefined }),
    })
    .map(({ source, destination, protocol, ...rest }) => ({
      kind: 'rule' as const,
      ...rest,
      ...(source && { source: { block: source[0], negated: source[1] } }),
      ...(destination && { destination: { block: destination[0], negated: destination[1] } }),
      ...(protocol && { protocol: { name: protocol[0], negated: protocol[1] } }),
    }));
}
