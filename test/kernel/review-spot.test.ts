// asgc review against the kernel: two random ASG worlds for one container (before, after), the
// review between them, and for a sample of its lines a real packet inside each gained or lost
// space, sent through the cell with the before rules and then with the after rules: a gain is
// refused before and answered after, a loss the reverse. nf_tables, both families.
import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Access, reviewCells, type ReviewSide } from '../../src/check/review.js';
import { FIELD, type Interval } from '../../src/check/space.js';
import { formatAddress, parseAddress } from '../../src/model/address.js';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import {
  asgWorld,
  type DenyNetworks,
  DESTINATION_NETS,
  type RawGroup,
  type WorldContainer,
  routeDestinationsOutside,
  worldTexts,
} from '../support/asg-world.js';
import { type BatchProbe, runBatch, startBatchServer } from '../support/batch-probes.js';
import { kernelTestsEnabled } from '../support/kernel.js';
import { createTopology, type HostSpec, OUTSIDE, type Topology } from '../support/topology.js';

const enabled = kernelTestsEnabled('review spot check');
const PORT_BASE = 7100;
const PORTS = Array.from({ length: 10 }, (_, i) => PORT_BASE + i);
const HOSTS: HostSpec[] = [
  { name: 'c1', kind: 'container', ipv4: '192.0.2.2', ipv6: '2001:db8:c1::2', linkLocal: 'fe80::2' },
  OUTSIDE,
];
const CONTAINER: WorldContainer = { handle: 'c1', ip: '192.0.2.2', ipv6: '2001:db8:c1::2', space: 'space-a', workload: 'app' };
const PROBES_PER_KIND = 6;

function sideOf(groups: RawGroup[], deny: DenyNetworks): ReviewSide {
  const compiled = compileScenario(worldTexts(groups, deny, [CONTAINER]));
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return { rulesets: compiled.value.cell, cell: compiled.value.policy };
}

/** A probe the test hosts can answer, inside the access's packets (a new connection), if there is one. */
function probeIn(family: 4 | 6, access: Access): BatchProbe | undefined {
  const at = (field: keyof typeof FIELD) => access.box.intervals[FIELD[field]] as Interval;
  const inside = (field: keyof typeof FIELD, value: bigint) => at(field)[0] <= value && value <= at(field)[1];
  if (!inside('state', 1n)) return undefined; // NEW
  const base = (parseAddress(DESTINATION_NETS[family].split('/')[0] as string) as { ok: true; value: { value: bigint } }).value
    .value;
  const remote = Array.from({ length: 32 }, (_, i) => base + BigInt(i)).find((address) => inside('remote', address));
  if (remote === undefined) return undefined;
  const to = formatAddress(family, remote);
  const protocol = at('protocol')[0] === at('protocol')[1] ? Number(at('protocol')[0]) : undefined;
  if (protocol === 6 || protocol === 17) {
    const port = PORTS.find((candidate) => inside('dport', BigInt(candidate)));
    return port === undefined ? undefined : { protocol: protocol === 6 ? 'tcp' : 'udp', to, port };
  }
  if (protocol === (family === 4 ? 1 : 58)) {
    const type = family === 4 ? 8 : 128;
    return inside('icmpType', BigInt(type)) && inside('icmpCode', 0n) ? { protocol: 'icmp', to, type, code: 0 } : undefined;
  }
  return undefined;
}

interface Case {
  readonly before: ReviewSide;
  readonly after: ReviewSide;
  readonly probes: Record<4 | 6, { probe: BatchProbe; kind: 'gained' | 'lost' }[]>;
}

/** Two worlds whose review gains and loses probeable packets in both families (seeded). */
function pickCase(): Case {
  const world = asgWorld({ portBase: PORT_BASE, icmpTypes: [8, 128] });
  const pair = fc.tuple(world.groups, world.denyNetworks, world.groups, world.denyNetworks);
  for (let seed = 1; seed < 300; seed++) {
    const [groupsA, denyA, groupsB, denyB] = fc.sample(pair, { seed, numRuns: 1 })[0] as [
      RawGroup[],
      DenyNetworks,
      RawGroup[],
      DenyNetworks,
    ];
    const before = sideOf(groupsA, denyA);
    const after = sideOf(groupsB, denyB);
    const probes: Case['probes'] = { 4: [], 6: [] };
    for (const review of reviewCells(before, after)) {
      if (review.direction !== 'egress' || review.unknown !== undefined) continue;
      for (const kind of ['gained', 'lost'] as const)
        for (const access of review[kind]) {
          const probe = probeIn(review.family, access);
          const list = probes[review.family].filter((entry) => entry.kind === kind);
          if (probe !== undefined && list.length < PROBES_PER_KIND) probes[review.family].push({ probe, kind });
        }
    }
    const both = ([4, 6] as const).every((family) =>
      ['gained', 'lost'].every((kind) => probes[family].some((entry) => entry.kind === kind)),
    );
    if (both) return { before, after, probes };
  }
  throw new Error('no pair of worlds with probeable gains and losses in 300 seeds');
}

describe.skipIf(!enabled)('asgc review against the kernel (nf_tables)', () => {
  let topology: Topology;
  let server: ChildProcess;
  const chosen = pickCase();

  beforeAll(async () => {
    topology = await createTopology(HOSTS);
    await routeDestinationsOutside(topology);
    server = await startBatchServer(topology.namespace('outside'), PORTS);
  }, 60_000);

  afterAll(async () => {
    server?.kill();
    await topology?.destroy();
  });

  it('each sampled gain is refused before and answered after; each loss the reverse', async () => {
    const dataplane = hostDataplane('nft', { namespace: topology.cell });
    const results: Record<'before' | 'after', Record<4 | 6, string[]>> = { before: { 4: [], 6: [] }, after: { 4: [], 6: [] } };
    for (const when of ['before', 'after'] as const) {
      for (const family of [4, 6] as const) await applyFamily(dataplane, chosen[when].rulesets[family], { prefix: 'asgc-' });
      for (const family of [4, 6] as const)
        results[when][family] = await runBatch(
          topology.namespace('c1'),
          chosen.probes[family].map((entry) => entry.probe),
        );
    }
    for (const family of [4, 6] as const) {
      const observed = chosen.probes[family].map(
        (entry, i) => `${entry.kind} ${JSON.stringify(entry.probe)}: ${results.before[family][i]} -> ${results.after[family][i]}`,
      );
      const expected = chosen.probes[family].map(
        (entry) =>
          `${entry.kind} ${JSON.stringify(entry.probe)}: ${entry.kind === 'gained' ? 'rejected -> accepted' : 'accepted -> rejected'}`,
      );
      expect(observed).toEqual(expected);
    }
  }, 120_000);
});
