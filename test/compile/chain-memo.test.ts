// The agent's compile: chains kept from earlier compiles (as their text) must give exactly what a
// fresh compile gives, whatever changed in between; unchanged groups are neither checked again
// nor read; a group whose rules do not compile holds its containers on their last chains.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCell, type CompiledCell } from '../../src/compile/compile.js';
import { ChainNamer } from '../../src/compile/naming.js';
import { ingestContainers } from '../../src/ingest/containers.js';
import { type GroupRulesCache, ingestSecurityGroups } from '../../src/ingest/security-groups.js';
import { parseIPv6 } from '../../src/model/address.js';
import type { SecurityGroup } from '../../src/model/asg.js';
import { type AsgcConfig, type C2cPolicy, type CellPolicy, DEFAULT_CONFIG } from '../../src/model/cell.js';
import { GenerationalCache } from '../../src/memo/generational.js';
import { TextChainMemo } from '../../src/render/text-memo.js';
import { renderCell, renderCellSets } from '../../src/scenario/pipeline.js';
import { generateCell } from '../bench/cell-generator.js';
import { tableNamed } from '../../src/ir/ruleset.js';

const SPACES = 4;

interface Caches {
  readonly groups: GroupRulesCache;
  readonly memo: TextChainMemo;
}

const newCaches = (): Caches => ({ groups: new GenerationalCache(), memo: new TextChainMemo() });

/** What one cycle sees: which spaces' ASGs changed, how many containers, which c2c policies, which settings. */
interface World {
  readonly changed: ReadonlySet<number>;
  readonly containers: number;
  readonly policies: readonly [number, number, number][];
  readonly config: AsgcConfig;
}

const CONFIGS: readonly AsgcConfig[] = [
  DEFAULT_CONFIG,
  // Every destination (the generated rules have one per family) as an ipset: sets come back with kept chains.
  { ...DEFAULT_CONFIG, ipsetMinDestinations: 1 },
  {
    ...DEFAULT_CONFIG,
    asgLogging: true,
    c2cLogging: true,
    outboundConnections: { perSecond: 10, burst: 20, expirySeconds: 10, logging: true, dryRun: false },
  },
  {
    ...DEFAULT_CONFIG,
    outboundConnections: { perSecond: 10, burst: 20, expirySeconds: 2, logging: false, dryRun: true },
    ingressTag: 0xffff0000,
    ingressTagPorts: 'all',
  },
];

/** App n's guid, as the generator names the apps of its containers. */
const app = (n: number) => {
  const scenario = generateCell(n, SPACES) as { containers: Record<string, { metadata: { policy_group_id: string } }> };
  return Object.values(scenario.containers).at(-1)?.metadata.policy_group_id as string;
};

function cellOf(world: World, caches?: Caches): CellPolicy {
  const scenario = generateCell(world.containers, SPACES, world.changed);
  const ingested = ingestSecurityGroups(scenario.securityGroups, 'security_groups.json', caches?.groups);
  caches?.groups.endRound();
  const { containers } = ingestContainers(scenario.containers, 'containers.json');
  const policies: C2cPolicy[] = world.policies.map(([source, destination, port]) => ({
    source: { appGuid: app(source), tag: source },
    destination: {
      appGuid: app(destination),
      tag: destination,
      protocol: port % 2 === 0 ? 'tcp' : 'udp',
      ports: { start: port, end: port },
    },
  }));
  // An app on another cell, by its IPv6 address (IPv6 c2c).
  const remote = parseIPv6('2001:db8:77::1');
  const endpoints = new Map([[app(1), remote.ok ? [remote.value] : []]]);
  return { securityGroups: ingested.groups, containers, policies, endpoints, config: world.config };
}

function compile(world: World, caches?: Caches): CompiledCell {
  const result = compileCell(cellOf(world, caches), caches ? { memo: caches.memo } : {});
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return result.value;
}

const worlds = fc.record({
  changed: fc.subarray([1, 2, 3, 4]).map((spaces) => new Set(spaces)),
  containers: fc.integer({ min: 1, max: 8 }),
  policies: fc.array(
    fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1000, max: 1003 })),
    {
      maxLength: 4,
    },
  ),
  config: fc.constantFrom(...CONFIGS),
});

const setChains = (ruleset: CompiledCell[4]) =>
  new Map(
    (tableNamed(ruleset, 'filter')?.chains ?? [])
      .filter((chain) => chain.name.startsWith('asgc-r-'))
      .map((chain) => [chain.name, chain.rules]),
  );

describe('compiling with the chains of earlier compiles', () => {
  it('gives exactly what a fresh compile gives, whatever changed in between (property)', () => {
    fc.assert(
      fc.property(fc.array(worlds, { minLength: 1, maxLength: 6 }), (sequence) => {
        const caches = newCaches();
        for (const world of sequence) {
          const [kept, fresh] = [compile(world, caches), compile(world)];
          expect(renderCell(kept)).toEqual(renderCell(fresh));
          expect(renderCellSets(kept)).toEqual(renderCellSets(fresh));
          expect(kept.manifest).toEqual(fresh.manifest);
        }
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it("reuses the chains of unchanged groups and rebuilds the changed group's", () => {
    const caches = newCaches();
    const world: World = { changed: new Set(), containers: 8, policies: [], config: DEFAULT_CONFIG };
    const before = compile(world, caches);
    const after = compile({ ...world, changed: new Set([2]) }, caches);
    for (const family of [4, 6] as const) {
      const [old, next] = [setChains(before[family]), setChains(after[family])];
      expect(old.size).toBe(SPACES);
      const reused = [...next].filter(([name, rules]) => old.get(name) === rules).length;
      expect(reused).toBe(SPACES - 1);
    }
  });

  it('reads the rules of no group whose chains it keeps', () => {
    const caches = newCaches();
    const world: World = { changed: new Set(), containers: 8, policies: [], config: DEFAULT_CONFIG };
    compile(world, caches);
    const cell = cellOf({ ...world, changed: new Set([3]) }, caches);
    const read: string[] = [];
    const watched = cell.securityGroups.map(
      (group): SecurityGroup =>
        Object.create(group, {
          rules: {
            get: () => {
              read.push(group.name);
              return group.rules;
            },
          },
        }) as SecurityGroup,
    );
    const result = compileCell({ ...cell, securityGroups: watched }, { memo: caches.memo });
    expect(result.ok).toBe(true);
    expect(read).toEqual(['space-3-egress', 'space-3-egress']);
  });

  it('keeps only what the last compile used', () => {
    const caches = newCaches();
    compile({ changed: new Set(), containers: 8, policies: [], config: DEFAULT_CONFIG }, caches);
    const [groups, chains] = [caches.groups.size, caches.memo.size];
    for (let round = 0; round < 5; round++)
      compile({ changed: new Set([1 + (round % SPACES)]), containers: 8, policies: [], config: DEFAULT_CONFIG }, caches);
    expect([caches.groups.size, caches.memo.size]).toEqual([groups, chains]);
    compile({ changed: new Set(), containers: 2, policies: [], config: DEFAULT_CONFIG }, caches);
    expect(caches.memo.size).toBeLessThan(chains);
  });
});

describe('holding containers whose ASGs do not compile', () => {
  /** The generated cell with space 2's group broken (a port out of range). */
  function broken(containers: number, caches: Caches): CompiledCell {
    const scenario = generateCell(containers, SPACES) as { securityGroups: { security_groups: { rules: string }[] } };
    const group = scenario.securityGroups.security_groups[1] as { rules: string };
    group.rules = group.rules.replace('"ports":"53"', '"ports":"70000"');
    const ingested = ingestSecurityGroups(scenario.securityGroups, 'security_groups.json', caches.groups);
    caches.groups.endRound();
    expect([...ingested.broken]).toHaveLength(1);
    const cell = {
      ...cellOf({ changed: new Set(), containers, policies: [], config: DEFAULT_CONFIG }),
      securityGroups: ingested.groups,
    };
    const result = compileCell(cell, { memo: caches.memo });
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    return result.value;
  }

  it('keeps their chains as last built, gives a new one default deny, and lets go once the rules compile', () => {
    const caches = newCaches();
    const world: World = { changed: new Set(), containers: 4, policies: [], config: DEFAULT_CONFIG };
    const good = renderCell(compile(world, caches));
    // Containers 2 and 6 live in space 2 (container n in space n mod 4); 6 is new.
    const held = broken(6, caches);
    expect(held.held).toHaveLength(2);
    const text = renderCell(held);
    const handles = Object.keys((generateCell(6, SPACES) as { containers: object }).containers);
    const names = new ChainNamer('asgc-');
    const lines = (rendered: string, chain: string) => rendered.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
    for (const family of [4, 6] as const) {
      // Container 2 (space 2, built before): its egress chain and its space's chain as they were.
      const egress2 = names.egress(handles[1] as string);
      expect(lines(text[family], egress2)).toEqual(lines(good[family], egress2));
      const target = / -j (asgc-r-\S+)$/.exec(
        lines(good[family], egress2).find((line) => line.includes(' -j asgc-r-')) ?? '',
      )?.[1] as string;
      expect(lines(text[family], target).length).toBeGreaterThan(0);
      expect(lines(text[family], target)).toEqual(lines(good[family], target));
      // Container 6 (new): default deny.
      expect(lines(text[family], names.egress(handles[5] as string))).toEqual([
        expect.stringMatching(/ -j REJECT --reject-with icmp6?-port-unreachable$/),
      ]);
    }
    const healed = compile({ ...world, containers: 6 }, caches);
    expect(healed.held).toEqual([]);
    expect(renderCell(healed)).toEqual(renderCell(compile({ ...world, containers: 6 })));
  });
});

describe('ingesting security groups with the cache', () => {
  it('reports the errors of a cached group at its current place in the document', () => {
    const cache: GroupRulesCache = new GenerationalCache();
    const bad = { guid: 'g-bad', name: 'bad', rules: JSON.stringify([{ protocol: 'tcp', destination: '10.0.0.1', ports: '0' }]) };
    const good = { guid: 'g-good', name: 'good', rules: '[]' };
    const first = ingestSecurityGroups({ security_groups: [bad, good] }, 'sg.json', cache);
    cache.endRound();
    const second = ingestSecurityGroups({ security_groups: [good, bad] }, 'sg.json', cache);
    const fresh = ingestSecurityGroups({ security_groups: [good, bad] }, 'sg.json');
    expect(first.errors[0]?.pointer).toMatch(/^\/security_groups\/0\/rules\/0\/ports/);
    expect(second.errors).toEqual(fresh.errors);
    expect(second.errors[0]?.pointer).toMatch(/^\/security_groups\/1\/rules\/0\/ports/);
    expect([...second.broken]).toEqual(['g-bad']);
    expect(second.groups[1]?.rules).toEqual(fresh.groups[1]?.rules);
  });
});

describe('a generational cache', () => {
  it('makes a value again when a dependency is a different object, even an equal one', () => {
    const cache = new GenerationalCache<string, number>();
    let made = 0;
    const dependency = [1, 2];
    cache.get('k', [dependency], () => ++made);
    expect(cache.get('k', [dependency], () => ++made)).toBe(1);
    expect(cache.get('k', [[1, 2]], () => ++made)).toBe(2);
    cache.endRound();
    cache.endRound();
    expect(cache.get('k', [[1, 2]], () => ++made)).toBe(3);
  });

  it('gives the value last made whatever it was made from, and keeps it for the next round', () => {
    const cache = new GenerationalCache<string, number>();
    cache.get('k', [1], () => 7);
    cache.endRound();
    expect(cache.last('k')).toBe(7);
    cache.endRound();
    expect(cache.last('k')).toBe(7);
    expect(cache.last('other')).toBeUndefined();
  });
});
