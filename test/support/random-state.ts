// Random (live, desired) pairs for the diff, and the invariants applying a plan must keep:
// owned chains end as desired, asgc's hooks lead the built-in chains, everything foreign stays
// exactly as it was.
import fc from 'fast-check';
import { expect } from 'vitest';
import { parseRuleSpec } from '../../src/iptables/rule-parse.js';
import { parseSaveText, savedTables } from '../../src/iptables/save-file.js';
import type { TextTable } from '../../src/ir/text-table.js';
import { tokenizeRestoreLine } from '../../src/iptables/tokenize.js';
import { type Rule, type Ruleset, tableNamed } from '../../src/ir/ruleset.js';
import type { Family } from '../../src/model/address.js';
import { renderRuleSpec } from '../../src/render/save-text.js';

export const PREFIX = 'asgc-';
const OWNED = ['asgc-c0', 'asgc-c1', 'asgc-c2', 'asgc-c3', 'asgc-c4'];
const FOREIGN = ['DOCKER-USER', 'KUBE-FIREWALL'];

function leafRules(family: Family): string[] {
  const net = family === 4 ? (i: number) => `198.51.100.${i}/32` : (i: number) => `2001:db8::${i}/128`;
  const reject = family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
  return [
    ...[1, 2, 3, 4, 5, 6].map((i) => `-d ${net(i)} -j ACCEPT`),
    `-p tcp -m tcp --dport 443 -j ACCEPT`,
    `-p udp -m udp --dport 53 -m comment --comment "dns" -j ACCEPT`,
    `-m state --state RELATED,ESTABLISHED -j ACCEPT`,
    `-j REJECT --reject-with ${reject}`,
  ];
}

/** A rule list for chain `index` of `chains`: leaves, and jumps only to later chains (no loops). */
function chainRules(family: Family, chains: readonly string[], index: number): fc.Arbitrary<string[]> {
  const jumps = chains.slice(index + 1).map((target) => `-j ${target}`);
  return fc.array(fc.constantFrom(...leafRules(family), ...jumps), { maxLength: 8 });
}

export interface DiffCase {
  readonly family: Family;
  /** The live filter table as iptables-save prints it. */
  readonly live: string;
  readonly desired: Ruleset;
}

function toRule(spec: string, family: Family): Rule {
  const rule = parseRuleSpec(spec, family, (name) => name.startsWith(PREFIX));
  if (rule.kind !== 'rule') throw new Error(`test rule not modelled: ${spec}`);
  return rule;
}

export function diffCase(family: Family): fc.Arbitrary<DiffCase> {
  const desiredChains = fc.subarray(OWNED);
  const liveOwned = fc.subarray(OWNED);
  return fc.tuple(desiredChains, liveOwned, fc.boolean(), fc.nat(1000)).chain(([desired, owned, foreignJumpsToOwned, seed]) =>
    fc
      .record({
        desiredRules: fc.tuple(...desired.map((_, i) => chainRules(family, desired, i))),
        hooks: fc.subarray(desired, { maxLength: Math.min(2, desired.length) }),
        liveRules: fc.tuple(
          ...owned.map((_, i) =>
            fc
              .tuple(chainRules(family, owned, i), fc.boolean())
              .map(([rules, drift]) => (drift ? [...rules, '-m addrtype --dst-type LOCAL -j ACCEPT'] : rules)),
          ),
        ),
        liveHooks: fc.subarray(owned, { maxLength: Math.min(3, owned.length) }),
        foreignForward: fc.array(fc.constantFrom('-i eth9 -j ACCEPT', '-j DOCKER-USER', '-o eth9 -m state --state NEW -j DROP'), {
          maxLength: 3,
        }),
        hookPosition: fc.nat(3),
        foreignJump: fc.constant(
          foreignJumpsToOwned && owned.length > 0 && seed % 3 === 0 ? owned[seed % owned.length] : undefined,
        ),
      })
      .map(({ desiredRules, hooks, liveRules, liveHooks, foreignForward, hookPosition, foreignJump }) => {
        const forward: string[] = [...foreignForward];
        forward.splice(Math.min(hookPosition, forward.length), 0, ...liveHooks.map((chain) => `-j ${chain}`));
        const userChains = [...FOREIGN, ...owned].sort();
        const live = [
          '*filter',
          ':INPUT ACCEPT [0:0]',
          ':FORWARD DROP [0:0]',
          ':OUTPUT ACCEPT [0:0]',
          ...userChains.map((chain) => `:${chain} - [0:0]`),
          '-A INPUT -i lo -j ACCEPT',
          ...forward.map((rule) => `-A FORWARD ${rule}`),
          `-A DOCKER-USER -s ${family === 4 ? '203.0.113.0/24' : '2001:db8:bad::/48'} -j DROP`,
          ...(foreignJump ? [`-A DOCKER-USER -j ${foreignJump}`] : []),
          '-A DOCKER-USER -j RETURN',
          ...owned.flatMap((chain, i) => (liveRules[i] ?? []).map((rule) => `-A ${chain} ${rule}`)),
          'COMMIT',
          '',
        ].join('\n');
        const ruleset: Ruleset = {
          family,
          tables: [
            {
              name: 'filter',
              chains: [
                { name: 'INPUT', policy: 'ACCEPT', rules: [] },
                { name: 'FORWARD', policy: 'ACCEPT', rules: hooks.map((chain) => toRule(`-j ${chain}`, family)) },
                { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
                ...desired.map((name, i) => ({ name, rules: (desiredRules[i] ?? []).map((spec) => toRule(spec, family)) })),
              ],
            },
          ],
        };
        return { family, live, desired: ruleset };
      }),
  );
}

/** One table of an iptables-save text. */
export function savedTable(text: string, name: string): TextTable {
  const parsed = parseSaveText(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  const table = savedTables(parsed.value).get(name);
  if (table === undefined) throw new Error(`no ${name} table`);
  return table;
}

export const filterTable = (text: string): TextTable => savedTable(text, 'filter');

const owned = (chain: string) => chain.startsWith(PREFIX);
const jumpsToOwned = (spec: string) => {
  const words = tokenizeRestoreLine(spec);
  const at = words.findIndex((word) => word === '-j' || word === '-g');
  return at >= 0 && owned(words[at + 1] ?? '');
};

/** What must hold after applying the plan for `testCase` to its live state. */
export function expectConverged(testCase: DiffCase, after: TextTable): void {
  const before = filterTable(testCase.live);
  const desired = tableNamed(testCase.desired, 'filter')?.chains ?? [];
  const wanted = new Map(desired.map((chain) => [chain.name, chain.rules.map((rule) => renderRuleSpec(rule, testCase.family))]));
  // Unwanted owned chains a foreign chain reaches (directly or through other unwanted ones) must stay.
  const keptByForeign = new Set<string>();
  const queue = [...before.chains.values()].filter(
    (chain) => !owned(chain.name) && !['INPUT', 'FORWARD', 'OUTPUT'].includes(chain.name),
  );
  while (queue.length > 0) {
    for (const spec of queue.shift()?.specs ?? []) {
      const target = tokenizeRestoreLine(spec).at(-1) as string;
      if (!jumpsToOwned(spec) || wanted.has(target) || keptByForeign.has(target)) continue;
      keptByForeign.add(target);
      const chain = before.chains.get(target);
      if (chain) queue.push(chain);
    }
  }
  for (const [name, chain] of after.chains) {
    if (['INPUT', 'FORWARD', 'OUTPUT'].includes(name)) {
      const hooks = wanted.get(name) ?? [];
      const foreign = (before.chains.get(name)?.specs ?? []).filter((spec) => !jumpsToOwned(spec));
      expect(chain.specs, `built-in chain ${name}`).toEqual([...hooks, ...foreign]);
      expect(chain.policy).toBe(before.chains.get(name)?.policy);
    } else if (owned(name)) {
      if (wanted.has(name)) expect(chain.specs, `owned chain ${name}`).toEqual(wanted.get(name));
      else expect(keptByForeign.has(name), `unwanted chain ${name} left`).toBe(true);
    } else {
      expect(chain.specs, `foreign chain ${name}`).toEqual(before.chains.get(name)?.specs);
    }
  }
  for (const name of wanted.keys()) expect(after.chains.has(name), `chain ${name} exists`).toBe(true);
  for (const name of before.chains.keys())
    if (!owned(name)) expect(after.chains.has(name), `foreign chain ${name} kept`).toBe(true);
}
