// Every shape the renderer can print, loaded into the kernel and read back: iptables-save
// must print exactly what we rendered, on both backends and both families.
import { describe, expect, it } from 'vitest';
import { comment } from '../../src/extensions/comment.js';
import { hashlimitMatch } from '../../src/extensions/hashlimit.js';
import { limitMatch } from '../../src/extensions/limit.js';
import { markMatch } from '../../src/extensions/mark.js';
import { stateMatch } from '../../src/extensions/state.js';
import type { Match } from '../../src/ir/matches.js';
import { type Rule, type Ruleset, rule } from '../../src/ir/ruleset.js';
import { ACCEPT, DROP, RETURN, goTo, jump } from '../../src/ir/targets.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import { type Family, FAMILIES, parseCidr, parseAddress, range as rangeBlock } from '../../src/model/address.js';
import { renderRuleset } from '../../src/render/save-text.js';
import { setMatch } from '../../src/extensions/set.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { kernelTestsEnabled, mustRun, restore, save, withNamespace } from '../support/kernel.js';

function cidr(text: string) {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return { block: parsed.value, negated: false };
}

function range(family: Family, from: string, to: string, negated = false) {
  const [start, end] = [parseAddress(from), parseAddress(to)];
  if (!start.ok || !end.ok) throw new Error('bad range');
  return { block: rangeBlock(family, start.value.value, end.value.value), negated };
}

const tcp = { name: 'tcp', negated: false };
/** Created in the namespace first: a rule cannot name a set that does not exist. */
const SHAPE_SET = 'asgc-s4-shapes';
const udp = { name: 'udp', negated: false };

function shapes(family: Family): Rule[] {
  const [host, net, other] =
    family === 4 ? ['192.0.2.7', '198.51.100.0/24', '203.0.113.0/25'] : ['2001:db8::7', '2001:db8:100::/48', 'fd00:1:2::/64'];
  const [lo, hi] = family === 4 ? ['192.0.2.10', '192.0.2.20'] : ['2001:db8::10', '2001:db8::ff:20'];
  const icmp: Match[] =
    family === 4
      ? [
          { kind: 'icmp', type: 8, negated: false },
          { kind: 'icmp', type: 3, code: 4, negated: false },
          { kind: 'icmp', type: 0, code: 0, negated: true },
          { kind: 'icmp', type: 255, negated: false },
        ]
      : [
          { kind: 'icmp6', type: 128, negated: false },
          { kind: 'icmp6', type: 1, code: 4, negated: false },
          { kind: 'icmp6', type: 255, negated: true },
        ];
  const icmpProtocol = { name: family === 4 ? 'icmp' : 'ipv6-icmp', negated: false };
  return [
    rule({ source: cidr(host), target: ACCEPT }),
    rule({ source: { ...cidr(net), negated: true }, destination: cidr(other), target: DROP }),
    rule({ destination: cidr(family === 4 ? '0.0.0.0/0' : '::/0'), target: RETURN }),
    rule({ inInterface: { name: 'eth0', negated: false }, outInterface: { name: 'veth+', negated: true }, target: ACCEPT }),
    rule({ protocol: { name: 'udp', negated: true }, target: ACCEPT }),
    rule({ protocol: tcp, matches: [{ kind: 'tcp', dport: { start: 80, end: 80, negated: false } }], target: ACCEPT }),
    rule({
      protocol: tcp,
      matches: [
        {
          kind: 'multiport',
          direction: 'dports',
          ports: [
            { start: 443, end: 443 },
            { start: 80, end: 80 },
            { start: 8000, end: 9000 },
          ],
          negated: false,
        },
      ],
      target: ACCEPT,
    }),
    rule({
      protocol: udp,
      matches: [{ kind: 'multiport', direction: 'sports', ports: [{ start: 53, end: 53 }], negated: true }],
      target: ACCEPT,
    }),
    rule({
      protocol: tcp,
      matches: [
        {
          kind: 'multiport',
          direction: 'ports',
          ports: [1, 3, 5, 7, 9, 11, 13].map((start) => ({ start, end: start + 1 })).concat([{ start: 15, end: 15 }]),
          negated: false,
        },
      ],
      target: ACCEPT,
    }),
    rule({
      protocol: tcp,
      matches: [
        { kind: 'tcp', sport: { start: 1024, end: 65535, negated: false }, dport: { start: 8000, end: 8999, negated: true } },
      ],
      target: ACCEPT,
    }),
    rule({ protocol: udp, matches: [{ kind: 'udp', dport: { start: 0, end: 65535, negated: false } }], target: ACCEPT }),
    ...icmp.map((match) => rule({ protocol: icmpProtocol, matches: [match], target: ACCEPT })),
    rule({
      protocol: tcp,
      matches: [
        { kind: 'iprange', destination: range(family, lo, hi) },
        { kind: 'tcp', dport: { start: 443, end: 443, negated: false } },
      ],
      target: ACCEPT,
    }),
    rule({
      matches: [{ kind: 'iprange', source: range(family, lo, lo), destination: range(family, lo, hi, true) }],
      target: ACCEPT,
    }),
    ...['plain_word-1', 'needs: quoting', '', '-x', `say "hi" it's a\\b`, 'é'.repeat(127) + 'x'].map((text) =>
      rule({ matches: [comment(text)], target: ACCEPT }),
    ),
    rule({ matches: [stateMatch('state', ['ESTABLISHED', 'RELATED'])], target: ACCEPT }),
    rule({ matches: [stateMatch('conntrack', ['UNTRACKED', 'NEW', 'INVALID'], true)], target: DROP }),
    rule({ matches: [limitMatch(1, 'sec', 5)], target: ACCEPT }),
    rule({ matches: [limitMatch(120, 'hour', 7)], target: ACCEPT }),
    rule({ protocol: udp, matches: [limitMatch(50, 'sec', 50)], target: { kind: 'LOG', prefix: 'OK_handle ' } }),
    rule({ target: { kind: 'LOG', prefix: 'DENY "x" ', level: 6 } }),
    rule({ target: { kind: 'LOG' } }),
    rule({ target: { kind: 'REJECT', with: family === 4 ? 'icmp-host-prohibited' : 'icmp6-adm-prohibited' } }),
    rule({ protocol: tcp, target: { kind: 'REJECT', with: 'tcp-reset' } }),
    rule({ matches: [markMatch(0x1234abcd)], target: ACCEPT }),
    rule({ matches: [markMatch(0, 0xffffffff, true)], target: ACCEPT }),
    rule({ matches: [markMatch(0x10, 0xf0)], target: ACCEPT }),
    rule({ target: { kind: 'MARK', value: 0xffff, mask: 0xffffffff } }),
    rule({ target: { kind: 'MARK', value: 0x1, mask: 0x1 } }),
    rule({
      protocol: tcp,
      matches: [
        stateMatch('conntrack', ['NEW']),
        hashlimitMatch({
          over: 'above',
          count: 100,
          unit: 'sec',
          burst: 200,
          modes: ['dstport', 'dstip'],
          name: 'asgc-o-0123456789ab-abcdefgh',
          expireMs: 10_000,
        }),
      ],
      target: { kind: 'REJECT', with: family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable' },
    }),
    rule({
      matches: [
        hashlimitMatch({ over: 'upto', count: 120, unit: 'hour', burst: 5, modes: [], name: 'foo', expireMs: 3_600_000 }),
      ],
      target: ACCEPT,
    }),
    rule({
      matches: [
        hashlimitMatch({ over: 'upto', count: 2, unit: 'min', burst: 5, modes: ['srcip'], name: 'bar', expireMs: 60_000 }),
      ],
      target: ACCEPT,
    }),
    rule({
      protocol: tcp,
      matches: [
        setMatch(SHAPE_SET),
        {
          kind: 'multiport',
          direction: 'dports',
          ports: [
            { start: 443, end: 443 },
            { start: 8000, end: 8080 },
          ],
          negated: false,
        },
      ],
      target: ACCEPT,
    }),
    rule({ matches: [{ kind: 'set', name: SHAPE_SET, directions: ['src'], negated: true }], target: DROP }),
    rule({ target: jump('asgc-other') }),
    rule({ target: goTo('asgc-other') }),
    rule({ matches: [comment('no target')] }),
  ];
}

function ruleset(family: Family): Ruleset {
  return {
    family,
    tables: [
      {
        name: 'filter',
        chains: [
          { name: 'INPUT', policy: 'ACCEPT', rules: [] },
          { name: 'FORWARD', policy: 'DROP', rules: [rule({ target: jump('asgc-shapes') })] },
          { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
          { name: 'asgc-shapes', rules: shapes(family) },
          { name: 'asgc-other', rules: [] },
        ],
      },
    ],
  };
}

const enabled = kernelTestsEnabled('canonical forms');

describe.skipIf(!enabled)('the renderer prints what iptables-save prints', () => {
  it.each(BACKENDS.flatMap((backend) => FAMILIES.map((family) => ({ backend, family }))))(
    '$backend, IPv$family',
    async ({ backend, family }) => {
      const text = renderRuleset(ruleset(family));
      await withNamespace(async (namespace) => {
        await mustRun(
          inNamespace(namespace, ['ipset', 'create', SHAPE_SET, 'hash:net', 'family', family === 4 ? 'inet' : 'inet6']),
        );
        const loaded = await restore(namespace, backend, family, text);
        expect(loaded.code, loaded.stderr).toBe(0);
        expect(await save(namespace, backend, family)).toBe(text);
      });
    },
    30_000,
  );
});
