// The optimiser may only ever make fewer rules: every packet's verdict stays the same. Checked
// by the evaluator over random chains and packets in a small address and port space (so rules
// overlap, shadow and touch each other often), and on the shapes it is for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Evaluator } from '../../src/check/evaluate.js';
import type { Packet } from '../../src/ir/packet.js';
import { optimiseRules } from '../../src/compile/optimise.js';
import { comment } from '../../src/extensions/comment.js';
import { limitMatch } from '../../src/extensions/limit.js';
import { stateMatch } from '../../src/extensions/state.js';
import type { Match } from '../../src/ir/matches.js';
import { type Chain, type ChainRule, type Rule, type Ruleset, rule } from '../../src/ir/ruleset.js';
import { ACCEPT, DROP, RETURN, type Target, jump } from '../../src/ir/targets.js';
import { blockFirst, blockLast, cidr, type Family, range } from '../../src/model/address.js';
import { renderRuleset } from '../../src/render/save-text.js';

const BASE: Record<Family, bigint> = { 4: 0x0a000000n, 6: 0x20010db8n << 96n };
const SPACE = 32;
const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function addressCondition(
  family: Family,
): fc.Arbitrary<{ block: ReturnType<typeof cidr> | ReturnType<typeof range>; negated: boolean }> {
  const offset = fc.integer({ min: 0, max: SPACE - 1 });
  const block = fc.oneof(
    fc
      .tuple(offset, fc.integer({ min: 0, max: 5 }))
      .map(([at, size]) => cidr(family, BASE[family] + BigInt(at), BITS[family] - size)),
    fc
      .tuple(offset, offset)
      .map(([a, b]) => range(family, BASE[family] + BigInt(Math.min(a, b)), BASE[family] + BigInt(Math.max(a, b)))),
  );
  return fc
    .tuple(block, fc.boolean(), fc.integer({ min: 0, max: 5 }))
    .map(([block, negated, roll]) => ({ block, negated: negated && roll === 0 }));
}

const port = fc.integer({ min: 1, max: 12 });
const span = fc.tuple(port, port).map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) }));

function ruleArbitrary(family: Family): fc.Arbitrary<Rule> {
  const icmpProtocol = family === 4 ? 'icmp' : 'ipv6-icmp';
  const protocolAndMatch: fc.Arbitrary<{ protocol?: string; match?: Match }> = fc.oneof(
    fc.constant({}),
    fc.constantFrom('tcp', 'udp').map((protocol) => ({ protocol })),
    fc
      .tuple(fc.constantFrom('tcp' as const, 'udp' as const), span, fc.integer({ min: 0, max: 6 }))
      .map(([protocol, { start, end }, roll]) => ({
        protocol,
        match: { kind: protocol, dport: { start, end, negated: roll === 0 } },
      })),
    fc
      .tuple(fc.constantFrom('tcp' as const, 'udp' as const), fc.array(span, { minLength: 1, maxLength: 4 }))
      .map(([protocol, ports]) => ({
        protocol,
        match: {
          kind: 'multiport' as const,
          direction: 'dports' as const,
          ports: ports.map((p) => (p.start === p.end ? p : p)),
          negated: false,
        },
      })),
    fc
      .tuple(fc.constantFrom(0, 3, 8, 128, 129, 255), fc.option(fc.constantFrom(0, 1), { nil: undefined }))
      .map(([type, code]) => ({
        protocol: icmpProtocol,
        match: {
          kind: family === 4 ? ('icmp' as const) : ('icmp6' as const),
          type,
          ...(code !== undefined && type !== 255 && { code }),
          negated: false,
        },
      })),
  );
  const extra: fc.Arbitrary<Match[]> = fc.subarray(
    [
      stateMatch('state', ['NEW']),
      stateMatch('state', ['RELATED', 'ESTABLISHED']),
      { kind: 'mark', value: 1, mask: 1, negated: false } as Match,
    ],
    { maxLength: 1 },
  );
  const target: fc.Arbitrary<Target | undefined> = fc.oneof(
    { weight: 6, arbitrary: fc.constant(ACCEPT) },
    { weight: 2, arbitrary: fc.constant(DROP) },
    {
      weight: 2,
      arbitrary: fc.constant<Target>({ kind: 'REJECT', with: family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable' }),
    },
    { weight: 1, arbitrary: fc.constant(RETURN) },
    { weight: 1, arbitrary: fc.constant<Target>({ kind: 'MARK', value: 1, mask: 1 }) },
    { weight: 1, arbitrary: fc.constant(jump('leaf')) },
    { weight: 1, arbitrary: fc.constant<Target>({ kind: 'LOG', prefix: 'x ' }) },
  );
  return fc
    .record({
      source: fc.option(addressCondition(family), { nil: undefined }),
      destination: fc.option(addressCondition(family), { nil: undefined }),
      transport: protocolAndMatch,
      extra,
      note: fc.constantFrom('a', 'b'),
      target,
    })
    .map(({ source, destination, transport, extra, note, target }) => {
      const matches: Match[] = [];
      // -s/-d take CIDRs; a range goes in an iprange match.
      const iprange: { source?: typeof source; destination?: typeof destination } = {};
      const fields: Partial<Rule> = {};
      for (const [field, condition] of [
        ['source', source],
        ['destination', destination],
      ] as const) {
        if (condition === undefined) continue;
        if (condition.block.kind === 'cidr') (fields as Record<string, unknown>)[field] = condition;
        else iprange[field] = condition;
      }
      if (iprange.source || iprange.destination) matches.push({ kind: 'iprange', ...iprange } as Match);
      if (transport.match) matches.push(transport.match);
      matches.push(...extra, comment(note));
      return rule({
        ...fields,
        ...(transport.protocol !== undefined && { protocol: { name: transport.protocol, negated: false } }),
        matches,
        ...(target !== undefined && { target }),
      });
    });
}

/** Rules that differ only in address or port, as ASG chains do: what merging works on. */
function mergeProneRule(family: Family): fc.Arbitrary<Rule> {
  return fc
    .record({
      destination: fc.option(
        addressCondition(family).map((condition) => ({ ...condition, negated: false })),
        { nil: undefined },
      ),
      protocol: fc.constantFrom('tcp', 'tcp', 'udp'),
      // Few port spans, so that rules share everything but the address (or the port) often.
      ports: fc.constantFrom({ start: 2, end: 2 }, { start: 3, end: 3 }, { start: 5, end: 6 }, { start: 2, end: 4 }),
      note: fc.constantFrom('a', 'a', 'b'),
      reject: fc.integer({ min: 0, max: 9 }),
    })
    .map(({ destination, protocol, ports, note, reject }) =>
      rule({
        ...(destination?.block.kind === 'cidr' && { destination: { block: destination.block, negated: false } }),
        protocol: { name: protocol, negated: false },
        matches: [
          ...(destination?.block.kind === 'range' ? [{ kind: 'iprange', destination } as Match] : []),
          { kind: protocol as 'tcp' | 'udp', dport: { ...ports, negated: false } },
          comment(note),
        ],
        target: reject === 0 ? { kind: 'REJECT', with: 'tcp-reset' } : ACCEPT,
      }),
    );
}

/** Packets just inside and just outside every rule's addresses and ports: where a wrong merge shows. */
function boundaryPackets(rules: readonly Rule[], family: Family): Packet[] {
  const packets: Packet[] = [];
  for (const rule of rules) {
    const range = rule.matches.find((match) => match.kind === 'iprange');
    const block = rule.destination?.block ?? (range?.kind === 'iprange' ? range.destination?.block : undefined);
    const [first, last] = block === undefined ? [BASE[family], BASE[family]] : [blockFirst(block), blockLast(block)];
    const ports = rule.matches.find((match) => match.kind === 'tcp' || match.kind === 'udp');
    const { start, end } =
      ports?.kind === 'tcp' || ports?.kind === 'udp' ? (ports.dport ?? { start: 1, end: 1 }) : { start: 1, end: 1 };
    const protocol = rule.protocol?.name === 'udp' ? 17 : 6;
    for (const destination of [first - 1n, first, last, last + 1n]) {
      for (const destinationPort of [start - 1, start, end, end + 1]) {
        packets.push({
          family,
          source: BASE[family],
          destination,
          protocol,
          sourcePort: 1,
          destinationPort,
          state: 'NEW',
          mark: 0,
        });
      }
    }
  }
  return packets;
}

function packetArbitrary(family: Family): fc.Arbitrary<Packet> {
  const address = fc.integer({ min: 0, max: SPACE - 1 }).map((at) => BASE[family] + BigInt(at));
  return fc
    .record({
      source: address,
      destination: address,
      kind: fc.constantFrom('tcp', 'udp', 'icmp'),
      sourcePort: port,
      destinationPort: port,
      icmpType: fc.constantFrom(0, 3, 8, 13, 128, 129),
      icmpCode: fc.constantFrom(0, 1),
      state: fc.constantFrom('NEW' as const, 'ESTABLISHED' as const),
      mark: fc.constantFrom(0, 1),
    })
    .map(({ kind, sourcePort, destinationPort, icmpType, icmpCode, ...rest }) => ({
      family,
      ...rest,
      ...(kind === 'icmp'
        ? { protocol: family === 4 ? 1 : 58, icmpType, icmpCode }
        : { protocol: kind === 'tcp' ? 6 : 17, sourcePort, destinationPort }),
    }));
}

function cellRuleset(family: Family, chains: { c: readonly ChainRule[]; leaf: readonly ChainRule[] }): Ruleset {
  const table: Chain[] = [
    {
      name: 'FORWARD',
      policy: 'ACCEPT',
      rules: [
        rule({ target: jump('c') }),
        rule({ matches: [{ kind: 'mark', value: 1, mask: 1, negated: false }], target: { kind: 'REJECT', with: 'tcp-reset' } }),
      ],
    },
    { name: 'c', rules: chains.c },
    { name: 'leaf', rules: chains.leaf },
  ];
  return { family, tables: [{ name: 'filter', chains: table }] };
}

describe('the optimiser keeps every verdict', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: random chains and packets, optimised or not, decide alike (property)`, () => {
      fc.assert(
        fc.property(
          fc.array(ruleArbitrary(family), { maxLength: 14 }),
          fc.array(ruleArbitrary(family), { maxLength: 4 }),
          fc.array(packetArbitrary(family), { minLength: 40, maxLength: 40 }),
          (c, leaf, packets) => {
            const plain = new Evaluator(cellRuleset(family, { c, leaf: leaf.filter((r) => r.target?.kind !== 'jump') }));
            const optimisedChains = {
              c: optimiseRules(c, family),
              leaf: optimiseRules(
                leaf.filter((r) => r.target?.kind !== 'jump'),
                family,
              ),
            };
            const optimised = new Evaluator(cellRuleset(family, optimisedChains));
            expect(optimisedChains.c.length).toBeLessThanOrEqual(c.length);
            for (const packet of packets) {
              const [a, b] = [plain.evaluate(packet, { hook: 'FORWARD' }), optimised.evaluate(packet, { hook: 'FORWARD' })];
              expect([b.verdict, b.rejectWith, b.mark]).toEqual([a.verdict, a.rejectWith, a.mark]);
            }
          },
        ),
        { numRuns: 400 },
      );
    });

    it(`IPv${family}: chains of rules that differ only in addresses and ports, optimised or not, decide alike (property)`, () => {
      fc.assert(
        fc.property(
          fc.array(mergeProneRule(family), { maxLength: 24 }),
          fc.array(packetArbitrary(family), { minLength: 60, maxLength: 60 }),
          (c, packets) => {
            const plain = new Evaluator(cellRuleset(family, { c, leaf: [] }));
            const optimised = new Evaluator(cellRuleset(family, { c: optimiseRules(c, family), leaf: [] }));
            for (const packet of [...packets, ...boundaryPackets(c, family)]) {
              const [a, b] = [plain.evaluate(packet, { hook: 'FORWARD' }), optimised.evaluate(packet, { hook: 'FORWARD' })];
              expect([b.verdict, b.rejectWith]).toEqual([a.verdict, a.rejectWith]);
            }
          },
        ),
        { numRuns: 400 },
      );
    });
  }
});

describe('what the optimiser makes of', () => {
  const tcp = { name: 'tcp', negated: false };
  const accept = (destination: string, dport: number, note = 'big-list#0'): Rule => {
    const [a, b, c, d] = destination.split('.').map(BigInt) as [bigint, bigint, bigint, bigint];
    return rule({
      destination: { block: cidr(4, (a << 24n) | (b << 16n) | (c << 8n) | d, 32), negated: false },
      protocol: tcp,
      matches: [{ kind: 'tcp', dport: { start: dport, end: dport, negated: false } }, comment(note)],
      target: ACCEPT,
    });
  };
  const render = (rules: readonly ChainRule[]) =>
    renderRuleset({ family: 4, tables: [{ name: 'filter', chains: [{ name: 'c', rules }] }] })
      .split('\n')
      .filter((line) => line.startsWith('-A'));

  it('a destination list with three ports: one multiport rule per run of addresses', () => {
    // 6,000 addresses in 3 runs of 2,000 contiguous ones, each with ports 80, 443, 8080: 18,000 rules.
    const rules: Rule[] = [];
    for (const base of [0, 4096, 8192]) {
      for (let i = 0; i < 2000; i++) {
        const host = base + i;
        for (const dport of [80, 443, 8080]) rules.push(accept(`198.51.${100 + (host >> 8)}.${host & 255}`, dport));
      }
    }
    const optimised = optimiseRules(rules, 4);
    expect(render(optimised)).toEqual([
      '-A c -p tcp -m iprange --dst-range 198.51.100.0-198.51.107.207 -m multiport --dports 80,443,8080 -m comment --comment "big-list#0" -j ACCEPT',
      '-A c -p tcp -m iprange --dst-range 198.51.116.0-198.51.123.207 -m multiport --dports 80,443,8080 -m comment --comment "big-list#0" -j ACCEPT',
      '-A c -p tcp -m iprange --dst-range 198.51.132.0-198.51.139.207 -m multiport --dports 80,443,8080 -m comment --comment "big-list#0" -j ACCEPT',
    ]);
  });

  it('an aligned block becomes a CIDR; more than 15 port slots split; other comments stay apart', () => {
    const rules = [0, 1, 2, 3].flatMap((host) => [accept(`192.0.2.${host}`, 22)]);
    expect(render(optimiseRules(rules, 4))).toEqual([
      '-A c -d 192.0.2.0/30 -p tcp -m tcp --dport 22 -m comment --comment "big-list#0" -j ACCEPT',
    ]);
    const ports = Array.from({ length: 20 }, (_, i) => accept('192.0.2.1', 1000 + 2 * i));
    const split = render(optimiseRules(ports, 4));
    expect(split).toHaveLength(2);
    expect(split[0]).toContain('--dports 1000,1002,1004,1006,1008,1010,1012,1014,1016,1018,1020,1022,1024,1026,1028 ');
    expect(render(optimiseRules([accept('192.0.2.1', 22, 'a#0'), accept('192.0.2.2', 22, 'b#0')], 4))).toHaveLength(2);
  });

  it('never merges rate-limited rules: each keeps its own bucket', () => {
    const limited = (destination: string): Rule => ({
      ...accept(destination, 443),
      matches: [limitMatch(1, 'sec', 1), { kind: 'tcp', dport: { start: 443, end: 443, negated: false } }, comment('big-list#0')],
    });
    const rules = [
      limited('192.0.2.1'),
      limited('192.0.2.0'),
      {
        ...limited('192.0.2.1'),
        matches: [limitMatch(1, 'sec', 1), { kind: 'tcp', dport: { start: 80, end: 80, negated: false } }, comment('big-list#0')],
      } as Rule,
    ];
    expect(optimiseRules(rules, 4)).toEqual(rules);
  });

  it('a rule an earlier one covers goes; one after a MARK or a jump stays', () => {
    const wide = rule({ destination: { block: cidr(4, 0xc0000200n, 24), negated: false }, target: ACCEPT });
    const narrow = accept('192.0.2.7', 443, 'other#1');
    expect(optimiseRules([wide, narrow], 4)).toEqual([wide]);
    const marking = rule({ target: { kind: 'MARK', value: 1, mask: 1 } });
    expect(optimiseRules([wide, marking, narrow], 4)).toHaveLength(3);
  });
});
