// Soak: 200 sync cycles against a namespace, each after a random change to the cell's inputs
// (ASG ports and destinations, containers coming and going, c2c policies, IPv6 endpoints).
// After every cycle the live tables equal the compile of the current inputs; memory does not
// grow across cycles.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { JsonLogger } from '../../src/agent/logger.js';
import { Metrics } from '../../src/agent/metrics.js';
import { FileSource } from '../../src/agent/sources.js';
import { Syncer } from '../../src/agent/sync.js';
import { hostDataplane } from '../../src/reconcile/apply.js';
import { defaultPolicy } from '../../src/reconcile/family.js';
import { renderRuleset } from '../../src/render/save-text.js';
import { kernelTestsEnabled, save, withNamespace } from '../support/kernel.js';
import { compileDirectory } from '../support/scenarios.js';

const enabled = kernelTestsEnabled('agent soak');
const CYCLES = 200;

/** Deterministic pseudo-random numbers (a failing run can be replayed). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

type Json = Record<string, unknown>;

describe.skipIf(!enabled)('soak', () => {
  it(`${CYCLES} cycles with random changes: live always equals the compile of the inputs, memory flat`, async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const directory = await mkdtemp(join(tmpdir(), 'asgc-soak-'));
    await cp('rules/c2c-ipv6-routed', directory, { recursive: true });
    const next = random(20261123);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
    const read = async (file: string) => JSON.parse(await readFile(join(directory, file), 'utf8')) as Json;
    const write = (file: string, value: unknown) => writeFile(join(directory, file), JSON.stringify(value));
    const apps = [
      'a1f0e2d3-c4b5-4a69-8788-99aabbccdd01',
      'b2e1f3c4-d5a6-4b7c-8d9e-0f1a2b3c4d02',
      'c3d2e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e03',
    ];

    const mutations: (() => Promise<void>)[] = [
      async () => {
        const document = await read('security_groups.json');
        const groups = document.security_groups as Json[];
        const rules = JSON.parse(groups[0]?.rules as string) as Json[];
        rules.push({
          protocol: pick(['tcp', 'udp']),
          destination: `203.0.113.${Math.floor(next() * 250)},2001:db8:77::${Math.floor(next() * 999)}`,
          ports: String(1 + Math.floor(next() * 65534)),
        });
        if (rules.length > 6) rules.splice(1, 1);
        (groups[0] as Json).rules = JSON.stringify(rules);
        await write('security_groups.json', document);
      },
      async () => {
        const containers = await read('containers.json');
        const handles = Object.keys(containers);
        if (handles.length > 2 && next() < 0.5) {
          delete containers[pick(handles.slice(2))];
        } else {
          const n = Math.floor(next() * 200);
          const handle = `soak-${n}`;
          containers[handle] = {
            handle,
            ip: `10.255.30.${n}`,
            ipv6: `2001:db8:3000:30::${n.toString(16)}`,
            metadata: {
              policy_group_id: pick(apps),
              space_id: 's',
              container_workload: pick(['app', 'task', 'staging']),
              ports: '8080',
            },
          };
        }
        await write('containers.json', containers);
      },
      async () => {
        const document = await read('policies.json');
        const policies = document.policies as { destination: { ports: { start: number; end: number } } }[];
        const policy = pick(policies);
        const start = 1 + Math.floor(next() * 60000);
        policy.destination.ports = { start, end: start + Math.floor(next() * 100) };
        await write('policies.json', document);
      },
      async () => {
        const endpoints = await read('endpoints.json');
        endpoints[pick(apps)] = Array.from(
          { length: 1 + Math.floor(next() * 3) },
          () => `2001:db8:3000:${Math.floor(next() * 9)}::${Math.floor(next() * 999)}`,
        );
        await write('endpoints.json', endpoints);
      },
    ];

    await withNamespace(async (namespace) => {
      const syncer = new Syncer({
        source: new FileSource(directory),
        metadataPath: join(directory, 'containers.json'),
        endpointsPath: join(directory, 'endpoints.json'),
        asgcConfigPath: join(directory, 'config.json'),
        dataplane: hostDataplane('nft', { namespace }),
        families: [4, 6],
        policy: defaultPolicy('nft', 60_000),
        now: Date.now,
        // Logs are written out and forgotten, as the JSON logger does (a memory logger would grow).
        log: new JsonLogger(() => undefined, 'debug'),
        metrics: new Metrics('test'),
      });
      const heap: number[] = [];
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        await pick(mutations)();
        const report = await syncer.runCycle(false);
        expect(report.status, JSON.stringify(report.problems)).not.toBe('failed');
        const expected = (await compileDirectory(directory)).cell;
        for (const family of [4, 6] as const) expect(await save(namespace, 'nft', family)).toBe(renderRuleset(expected[family]));
        if (cycle % 20 === 0) {
          gc();
          heap.push(process.memoryUsage().heapUsed);
        }
      }
      // Flat: after the first samples (warm-up), the heap stays within a few MB.
      const growth = Math.max(...heap.slice(1)) - (heap[1] as number);
      process.stderr.write(
        `soak: heap after gc every 20 cycles (MB): ${heap.map((bytes) => (bytes / 2 ** 20).toFixed(1)).join(' ')}; RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB\n`,
      );
      expect(growth).toBeLessThan(8 * 2 ** 20);
    });
    await rm(directory, { recursive: true, force: true });
  }, 300_000);
});
