// The agent's caches across compiles: reusing what did not change must give exactly what a
// fresh compile gives, reuse the chains of unchanged groups, and forget what is gone.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCell } from '../../src/compile/compile.js';
import { CompileCache } from '../../src/compile/compile-cache.js';
import { ingestContainers } from '../../src/ingest/containers.js';
import { type GroupRulesCache, ingestSecurityGroups } from '../../src/ingest/security-groups.js';
import { GenerationalCache } from '../../src/memo/generational.js';
import { type AsgcConfig, DEFAULT_CONFIG } from '../../src/model/cell.js';
import { renderCell, renderCellSets } from '../../src/scenario/pipeline.js';
import { generateCell } from '../bench/cell-generator.js';

const CONTAINERS = 12;
const SPACES = 4;

interface Caches {
  readonly groups: GroupRulesCache;
  readonly compile: CompileCache;
}

/** Every destination (the generated rules have one per family) as an ipset: sets must come back with cached chains. */
const WITH_IPSETS = { ...DEFAULT_CONFIG, ipsetMinDestinations: 1 };

function compile(changed: ReadonlySet<number>, caches?: Caches, config: AsgcConfig = DEFAULT_CONFIG) {
  const scenario = generateCell(CONTAINERS, SPACES, changed);
  const ingested = ingestSecurityGroups(scenario.securityGroups, 'security_groups.json', caches?.groups);
  caches?.groups.endRound();
  const { containers } = ingestContainers(scenario.containers, 'containers.json');
  const cell = { securityGroups: ingested.groups, containers, policies: [], endpoints: new Map(), config };
  const result = compileCell(cell, caches ? { cache: caches.compile } : {});
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return result.value;
}

const setChains = (ruleset: ReturnType<typeof compile>[4]) =>
  new Map(
    (ruleset.tables[0]?.chains ?? [])
      .filter((chain) => chain.name.startsWith('asgc-r-'))
      .map((chain) => [chain.name, chain.rules]),
  );

describe('compiling with the caches of earlier compiles', () => {
  it('gives exactly what a fresh compile gives, whatever changed in between (property)', () => {
    const changes = fc.array(
      fc.subarray([1, 2, 3, 4]).map((spaces) => new Set(spaces)),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(changes, fc.constantFrom(DEFAULT_CONFIG, WITH_IPSETS), (sequence, config) => {
        const caches = { groups: new GenerationalCache(), compile: new CompileCache() } as Caches;
        for (const changed of sequence) {
          const [cached, fresh] = [compile(changed, caches, config), compile(changed, undefined, config)];
          expect(renderCell(cached)).toEqual(renderCell(fresh));
          expect(renderCellSets(cached)).toEqual(renderCellSets(fresh));
          if (config === WITH_IPSETS) expect(renderCellSets(fresh)).toBeDefined();
        }
      }),
      { numRuns: 40 },
    );
  }, 30_000);

  it("reuses the chains of unchanged groups and rebuilds the changed group's", () => {
    const caches = { groups: new GenerationalCache(), compile: new CompileCache() } as Caches;
    const before = compile(new Set(), caches);
    const after = compile(new Set([2]), caches);
    for (const family of [4, 6] as const) {
      const [old, next] = [setChains(before[family]), setChains(after[family])];
      expect(old.size).toBe(SPACES);
      const reused = [...next].filter(([name, rules]) => old.get(name) === rules).length;
      expect(reused).toBe(SPACES - 1);
    }
  });

  it('keeps only what the last compile used', () => {
    const caches = { groups: new GenerationalCache(), compile: new CompileCache() } as Caches;
    compile(new Set(), caches);
    const first = caches.groups.size;
    for (let round = 0; round < 5; round++) compile(new Set([1 + (round % SPACES)]), caches);
    expect(caches.groups.size).toBe(first);
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
});
