// One sync cycle at a time, against a strict simulated dataplane and scenario files on disk:
// convergence, the verified cache (no read-back when nothing changed), drift, and the failure
// policy (never flush, never loosen; hold what cannot be compiled).
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/agent/logger.js';
import { Metrics } from '../../src/agent/metrics.js';
import { FileSource } from '../../src/agent/sources.js';
import { Syncer } from '../../src/agent/sync.js';
import { RestoreError } from '../../src/iptables/dataplane.js';
import { compileDirectory } from '../support/scenarios.js';
import { SimulatedDataplane } from '../support/simulated-dataplane.js';
import { withRestore } from '../support/dataplanes.js';
import type { Dataplane } from '../../src/iptables/dataplane.js';
import type { ReconcilePolicy } from '../../src/reconcile/family.js';
import { renderRuleset } from '../../src/render/save-text.js';

let directory: string;
let clock: number;
let dataplane: SimulatedDataplane;

/** nf_tables' policy: the canary every cycle, what is written read back at once. */
const POLICY: ReconcilePolicy = { resyncIntervalMs: 60_000, canaryIntervalMs: 0, verify: 'now', postWriteDelayMs: 0 };

function syncer(plane: Dataplane = dataplane, policy = POLICY) {
  return new Syncer({
    source: new FileSource(directory),
    metadataPath: join(directory, 'containers.json'),
    endpointsPath: join(directory, 'endpoints.json'),
    asgcConfigPath: join(directory, 'config.json'),
    dataplane: { tables: plane },
    families: [4, 6],
    policy,
    now: () => clock,
    log: new MemoryLogger(),
    metrics: new Metrics('test'),
  });
}

/** The family's tables asgc writes, as iptables-save prints them. */
async function live(family: 4 | 6): Promise<string> {
  let text = '';
  for (const table of ['raw', 'filter']) if (await dataplane.hasTable(family, table)) text += await dataplane.save(family, table);
  return text;
}

async function expected(family: 4 | 6): Promise<string> {
  return renderRuleset((await compileDirectory(directory)).cell[family]);
}

async function editJson(file: string, edit: (value: Record<string, unknown>) => void): Promise<void> {
  const path = join(directory, file);
  const value = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  await writeFile(path, JSON.stringify(value));
}

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'asgc-sync-'));
  await cp('rules/lifecycles-two-spaces', directory, { recursive: true });
  clock = 1_000_000;
  dataplane = new SimulatedDataplane();
});
afterEach(() => rm(directory, { recursive: true, force: true }));

/** An ASG change: the orders-db group's first rule moves to port 5433. */
function changeOrdersDbPort(): Promise<void> {
  return editJson('security_groups.json', (document) => {
    const groups = (document as { security_groups: { name: string; rules: { ports?: string }[] }[] }).security_groups;
    (groups.find((group) => group.name === 'orders-db')?.rules[0] as { ports: string }).ports = '5433';
  });
}

describe('a sync cycle', () => {
  it('converges to what the scenario compiles to', async () => {
    const report = await syncer().runCycle(true);
    expect(report.status).toBe('applied');
    for (const family of [4, 6] as const) expect(await live(family)).toBe(await expected(family));
  });

  it('with unchanged inputs reads nothing back and restores nothing: only the canary (the hook chains) is checked', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    const [saves, restores, reads] = [dataplane.saves, dataplane.restores.length, dataplane.chainsRead.length];
    const report = await sync.runCycle(false);
    expect(report.status).toBe('unchanged');
    expect(dataplane.saves).toBe(saves);
    expect(dataplane.restores.length).toBe(restores);
    expect(dataplane.chainsRead.slice(reads).sort()).toEqual(['4 FORWARD', '4 INPUT', '6 FORWARD', '6 INPUT', '6 PREROUTING']);
  });

  it('on legacy checks the canary only every canary interval, and what it wrote at a later cycle', async () => {
    const legacy: ReconcilePolicy = {
      resyncIntervalMs: 600_000,
      canaryIntervalMs: 30_000,
      verify: 'later',
      postWriteDelayMs: 2_000,
    };
    const sync = syncer(dataplane, legacy);
    await sync.runCycle(true);
    // What the first cycle wrote is read back 2 s later.
    expect(sync.nextCheckAt).toBe(clock + 2_000);
    clock += 2_000;
    await sync.runCycle(false);
    expect(sync.nextCheckAt).toBeUndefined();
    let [saves, reads] = [dataplane.saves, dataplane.chainReads];
    clock += 10_000;
    expect((await sync.runCycle(false)).status).toBe('unchanged');
    expect([dataplane.saves - saves, dataplane.chainReads - reads]).toEqual([0, 0]);
    // A change: written, not read back in the same cycle; the check is due 2 s later.
    await changeOrdersDbPort();
    expect((await sync.runCycle(false)).status).toBe('applied');
    expect([dataplane.saves - saves, dataplane.chainReads - reads]).toEqual([0, 0]);
    expect(sync.nextCheckAt).toBe(clock + 2_000);
    clock += 2_000;
    [saves, reads] = [dataplane.saves, dataplane.chainReads];
    expect((await sync.runCycle(false)).status).toBe('unchanged');
    // Only IPv4 wrote (the change has IPv4 destinations only): one whole-table read.
    expect(dataplane.saves - saves).toBe(1);
    expect(sync.nextCheckAt).toBeUndefined();
  });

  /** Someone else deletes rule 1 of the first IPv4 chain whose name starts with `prefix`. */
  async function deleteFirstRule(prefix: string): Promise<void> {
    const declaration = (await live(4)).split('\n').find((line) => line.startsWith(`:${prefix}`));
    const chain = declaration?.split(' ')[0]?.slice(1) as string;
    await dataplane.restore(4, `*filter\n-D ${chain} 1\nCOMMIT\n`);
  }

  it('reads back when the resync interval is due, and repairs drift then', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    await deleteFirstRule('asgc-r-');
    const saves = dataplane.saves;
    clock += 61_000;
    const report = await sync.runCycle(false);
    expect(dataplane.saves).toBeGreaterThan(saves);
    expect(report.families[4]?.status).toBe('applied');
    expect(await live(4)).toBe(await expected(4));
  });

  it('repairs at once when its canary chain is gone or flushed', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    dataplane.flushAll(4);
    dataplane.removeChain(6, 'asgc-forward');
    const report = await sync.runCycle(false);
    expect(report.families[6]?.status).toBe('applied');
    expect(report.families[4]?.status).toBe('applied');
    for (const family of [4, 6] as const) expect(await live(family)).toBe(await expected(family));
  });

  it('plans a change against what it knows, rewrites the chain whole, and reads back only what it wrote and the hooks', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    await changeOrdersDbPort();
    const [saves, restores, reads] = [dataplane.saves, dataplane.restores.length, dataplane.chainsRead.length];
    const report = await sync.runCycle(false);
    expect(report.status).toBe('applied');
    expect(dataplane.saves - saves).toBe(0);
    const scripts = dataplane.restores.slice(restores).map((restore) => restore.script);
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).not.toMatch(/^-[DI] asgc-/m);
    const written = [...(scripts[0] as string).matchAll(/^:(\S+)/gm)].map((match) => `4 ${match[1]}`);
    // IPv4 reads back what it wrote and its hooks; IPv6, unchanged, checks its canary.
    expect(dataplane.chainsRead.slice(reads).sort()).toEqual(
      [...written, '4 FORWARD', '4 INPUT', '6 FORWARD', '6 INPUT', '6 PREROUTING'].sort(),
    );
    expect(await live(4)).toBe(await expected(4));
  });

  it('repairs at once what someone else changed in a chain it just wrote (the post-write check)', async () => {
    // Another writer deletes a rule of the chain asgc just wrote, right after asgc's restore.
    let armed = false;
    let raced = false;
    const racing = withRestore(dataplane, async (family, script, base) => {
      await base.restore(family, script);
      const chain = /^:(asgc-r-\S+)/m.exec(script)?.[1];
      if (armed && !raced && family === 4 && chain !== undefined) {
        raced = true;
        await base.restore(4, `*filter\n-D ${chain} 1\nCOMMIT\n`);
      }
    });
    const sync = syncer(racing);
    await sync.runCycle(true);
    await changeOrdersDbPort();
    armed = true;
    const report = await sync.runCycle(false);
    expect(raced).toBe(true);
    expect(report.status).toBe('applied');
    expect(report.families[4]?.restores).toBe(2);
    expect(await live(4)).toBe(await expected(4));
  });

  it('leaves drift in a chain a change does not touch to the resync', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    // Someone deletes a rule of a chain the next change does not touch (a container's ingress).
    await deleteFirstRule('asgc-i-');
    await changeOrdersDbPort();
    const report = await sync.runCycle(false);
    expect(report.families[4]?.status).toBe('applied');
    expect(report.families[4]?.restores).toBe(1);
    expect(await live(4)).not.toBe(await expected(4));
    clock += 61_000;
    const resync = await sync.runCycle(false);
    expect(resync.families[4]?.status).toBe('applied');
    expect(await live(4)).toBe(await expected(4));
  });

  it('applies a changed ASG and a new container in the next cycle', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    await changeOrdersDbPort();
    await editJson('containers.json', (document) => {
      document['a0000000-0000-4000-8000-00000000a009'] = {
        handle: 'a0000000-0000-4000-8000-00000000a009',
        ip: '10.255.8.19',
        metadata: { space_id: '5351a742-1f0d-4b7c-9e2a-6c8d0b4f3a21', container_workload: 'app' },
      };
    });
    const report = await sync.runCycle(false);
    expect(report.status).toBe('applied');
    expect(await live(4)).toBe(await expected(4));
    expect(await live(4)).toContain('--dport 5433');
  });
});

describe('the failure policy', () => {
  it('a half-written metadata file is an error for this cycle, not an empty cell', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    const before = await live(4);
    const text = await readFile(join(directory, 'containers.json'), 'utf8');
    await writeFile(join(directory, 'containers.json'), text.slice(0, text.length / 2));
    const report = await sync.runCycle(false);
    expect(report.status).toBe('failed');
    expect(report.problems[0]).toMatchObject({ kind: 'metadata', message: expect.stringContaining('torn or half-written') });
    expect(await live(4)).toBe(before);
  });

  it('a container whose ASGs do not compile keeps its last rules; the others sync; a new one gets default deny', async () => {
    const sync = syncer();
    await sync.runCycle(true);
    const before = await live(4);
    // Break the space-A running group, change a space-B group, add a container in space A.
    await editJson('security_groups.json', (document) => {
      const groups = (document as { security_groups: { name: string; rules: { ports?: string; destination?: string }[] }[] })
        .security_groups;
      (groups.find((group) => group.name === 'orders-db')?.rules[0] as { destination: string }).destination = '010.0.0.1';
      (groups.find((group) => group.name === 'ldap')?.rules[0] as { ports: string }).ports = '637';
    });
    await editJson('containers.json', (document) => {
      document['a0000000-0000-4000-8000-00000000a009'] = {
        handle: 'a0000000-0000-4000-8000-00000000a009',
        ip: '10.255.8.19',
        metadata: { space_id: '5351a742-1f0d-4b7c-9e2a-6c8d0b4f3a21', container_workload: 'app' },
      };
    });
    const report = await sync.runCycle(false);
    expect([...report.held].sort()).toEqual([
      'a0000000-0000-4000-8000-00000000a001',
      'a0000000-0000-4000-8000-00000000a002',
      'a0000000-0000-4000-8000-00000000a009',
    ]);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: 'input', message: expect.stringContaining('holding 3 container(s)') }),
    );
    const after = await live(4);
    const chain = (text: string, prefix: string) => text.split('\n').filter((line) => line.startsWith(`-A ${prefix}`));
    // Held: same chains as before (space A's running set, a001's egress).
    expect(chain(after, 'asgc-r-5351a7421f0d')).toEqual(chain(before, 'asgc-r-5351a7421f0d'));
    expect(chain(after, 'asgc-o-a00000000000-juz6ptz4')).toEqual(chain(before, 'asgc-o-a00000000000-juz6ptz4'));
    // Synced: space B's change.
    expect(after).toContain('-d 198.51.100.50/32 -p tcp -m tcp --dport 637');
    // The new container: default deny until its rules compile.
    const fresh = chain(after, 'asgc-o-a00000000000-').filter((line) => !before.includes(line.split(' ')[1] as string));
    expect(fresh).toEqual([expect.stringMatching(/^-A asgc-o-a00000000000-\S+ -j REJECT --reject-with icmp-port-unreachable$/)]);
    // Fixed: everyone synced again.
    await editJson('security_groups.json', (document) => {
      const groups = (document as { security_groups: { name: string; rules: { destination?: string }[] }[] }).security_groups;
      (groups.find((group) => group.name === 'orders-db')?.rules[0] as { destination: string }).destination = '203.0.113.10';
    });
    const healed = await sync.runCycle(false);
    expect(healed.held).toEqual([]);
    expect(await live(4)).toBe(await expected(4));
  });

  it('an invalid policies document leaves c2c as it last was', async () => {
    await cp('rules/c2c-ipv4-overlay', directory, { recursive: true, force: true });
    const sync = syncer();
    await sync.runCycle(true);
    const before = await live(4);
    await editJson('policies.json', (document) => {
      (document as { policies: { destination: { ports: { start: number } } }[] }).policies[0]!.destination.ports.start = 70000;
    });
    const report = await sync.runCycle(false);
    expect(report.problems).toContainEqual(
      expect.objectContaining({
        kind: 'input',
        message: expect.stringContaining('policies invalid, using the last good version'),
      }),
    );
    expect(await live(4)).toBe(before);
  });

  it('IPv4 failing does not stop IPv6', async () => {
    const failingV4 = withRestore(dataplane, async (family, script, base) => {
      if (family === 4) throw new RestoreError(4, 'iptables-restore: line 2 failed', 2, []);
      await base.restore(family, script);
    });
    const report = await syncer(failingV4).runCycle(true);
    expect(report.status).toBe('failed');
    // IPv6 writes its raw table (anti-spoofing) and its filter table, a transaction each.
    expect(report.families).toMatchObject({ 4: { status: 'failed', restores: 0 }, 6: { status: 'applied', restores: 2 } });
    expect(await live(6)).toBe(await expected(6));
    expect(await live(4)).not.toContain('asgc-');
  });

  it('an invalid asgc configuration with none applied before stops the cycle (defaults could be looser)', async () => {
    await writeFile(join(directory, 'config.json'), '{"deny_networks": {"always": ["nonsense"]}}');
    const report = await syncer().runCycle(true);
    expect(report.status).toBe('failed');
    expect(report.problems[0]?.message).toContain('asgc configuration invalid and none applied yet');
    expect(dataplane.restores).toEqual([]);
  });
});
