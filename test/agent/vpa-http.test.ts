// VPA's force and debug servers as silk's CNI and the BOSH job call them, against a real loop,
// a real syncer and a strict simulated dataplane: every status and body of VPA's handlers,
// and every failure path.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/agent/logger.js';
import { AgentLoop } from '../../src/agent/loop.js';
import { Metrics } from '../../src/agent/metrics.js';
import { FileSource } from '../../src/agent/sources.js';
import { Syncer } from '../../src/agent/sync.js';
import { startDebugServer, startForceServer, VpaEndpoints } from '../../src/agent/vpa-http.js';
import { type Dataplane, RestoreError } from '../../src/iptables/dataplane.js';
import { withRestore } from '../support/dataplanes.js';
import { SimulatedDataplane } from '../support/simulated-dataplane.js';

const NEW = 'a0000000-0000-4000-8000-00000000a009';

let directory: string;
let dataplane: SimulatedDataplane;
let servers: Server[];
let loop: AgentLoop;
let log: MemoryLogger;

async function start(plane: Dataplane = dataplane, enableAsgSyncing = true) {
  log = new MemoryLogger();
  const syncer = new Syncer({
    source: new FileSource(directory),
    metadataPath: join(directory, 'containers.json'),
    asgcConfigPath: join(directory, 'config.json'),
    dataplane: { tables: plane },
    families: [4, 6],
    policy: { resyncIntervalMs: 60_000, canaryIntervalMs: 0, verify: 'now', postWriteDelayMs: 0 },
    now: Date.now,
    log,
    metrics: new Metrics('test'),
  });
  loop = new AgentLoop(syncer, { intervalMs: 60_000, jitter: 0, backoffMs: 60_000, log });
  loop.start();
  await loop.requestSync();
  const endpoints = new VpaEndpoints(loop, syncer, log, enableAsgSyncing);
  servers = [await startForceServer(endpoints, '127.0.0.1', 0), await startDebugServer(endpoints, loop, '127.0.0.1', 0)];
  const url = (server: Server) => `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const call = async (server: Server, path: string, init: RequestInit = {}) => {
    const response = await fetch(`${url(server)}${path}`, init);
    return { status: response.status, body: await response.text() };
  };
  return {
    force: (path: string, init?: RequestInit) => call(servers[0] as Server, path, init),
    debug: (path: string, init?: RequestInit) => call(servers[1] as Server, path, init),
  };
}

async function addContainer(handle: string, ip: string, spaceId = '5351a742-1f0d-4b7c-9e2a-6c8d0b4f3a21') {
  const path = join(directory, 'containers.json');
  const containers = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  containers[handle] = { handle, ip, metadata: { space_id: spaceId, container_workload: 'app', policy_group_id: 'app-9' } };
  await writeFile(path, JSON.stringify(containers));
}

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'asgc-vpa-'));
  await cp('rules/lifecycles-two-spaces', directory, { recursive: true });
  dataplane = new SimulatedDataplane();
  servers = [];
});
afterEach(async () => {
  await loop?.stop();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await rm(directory, { recursive: true, force: true });
});

describe("VPA's force server, called as the CNI calls it", () => {
  it("answers a container create with 200 once the container's rules are in the tables, whatever the method", async () => {
    const { force } = await start();
    await addContainer(NEW, '10.255.8.19');
    expect(await force('/force-policy-poll-cycle')).toEqual({ status: 200, body: '' });
    expect(await force(`/force-asgs-for-container?container=${NEW}`, { method: 'POST' })).toEqual({
      status: 200,
      body: `updated container ${NEW}`,
    });
    expect(await dataplane.save(4, 'filter')).toMatch(/-A asgc-forward -s 10\.255\.8\.19\/32 -j asgc-o-a0000000000/);
    expect((await dataplane.save(4, 'filter')).match(/^:asgc-[io]-/gm)).toHaveLength(2 * 7);
    // Deleted from the metadata, then cleaned up: its chains are gone.
    const path = join(directory, 'containers.json');
    const containers = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    delete containers[NEW];
    await writeFile(path, JSON.stringify(containers));
    expect(await force(`/force-orphaned-asgs-cleanup?container=${NEW}`)).toEqual({
      status: 200,
      body: `cleaned up ASGs for container ${NEW}`,
    });
    expect(await dataplane.save(4, 'filter')).not.toContain('10.255.8.19');
    expect((await dataplane.save(4, 'filter')).match(/^:asgc-[io]-/gm)).toHaveLength(2 * 6);
  });

  it('refuses as VPA does: no container 400, ASG syncing disabled 405; an unknown container is 200, as in VPA', async () => {
    const { force } = await start();
    expect(await force('/force-asgs-for-container')).toEqual({ status: 400, body: 'no container specified' });
    expect(await force('/force-orphaned-asgs-cleanup?container=')).toEqual({ status: 400, body: 'no container specified' });
    expect(await force('/force-asgs-for-container?container=nobody')).toEqual({ status: 200, body: 'updated container nobody' });
    expect(log.entries.some((entry) => entry.event === 'vpa.unknown_container')).toBe(true);
    expect(await force('/nothing')).toMatchObject({ status: 404 });
    await loop.stop();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    const disabled = await start(dataplane, false);
    expect(await disabled.force('/force-asgs-for-container?container=x')).toEqual({
      status: 405,
      body: 'ASG syncing has been disabled administratively',
    });
    expect(await disabled.force('/force-orphaned-asgs-cleanup?container=x')).toMatchObject({ status: 405 });
  });

  it('answers 500 with the reason when the rules cannot be applied, or the container is held because its ASGs do not compile', async () => {
    let failing = false;
    const plane = withRestore(dataplane, async (family, script, base) => {
      if (failing) throw new RestoreError(family, 'iptables-restore: line 2 failed', 2, []);
      await base.restore(family, script);
    });
    const { force } = await start(plane);
    failing = true;
    await addContainer(NEW, '10.255.8.19');
    const applied = await force(`/force-asgs-for-container?container=${NEW}`);
    expect(applied.status).toBe(500);
    expect(applied.body).toMatch(new RegExp(`^failed to update asgs for container ${NEW}: .*line 2 failed`));
    expect((await force('/force-policy-poll-cycle')).body).toMatch(/^failed to force policy poll cycle: /);
    failing = false;
    // A space whose ASGs do not compile holds its new container on default deny: not "updated".
    const groupsPath = join(directory, 'security_groups.json');
    const document = JSON.parse(await readFile(groupsPath, 'utf8')) as {
      security_groups: { name: string; rules: { destination?: string }[] }[];
    };
    (document.security_groups.find((group) => group.name === 'orders-db')?.rules[0] as { destination: string }).destination =
      '010.0.0.1';
    await writeFile(groupsPath, JSON.stringify(document));
    const held = await force(`/force-asgs-for-container?container=${NEW}`);
    expect(held).toEqual({
      status: 500,
      body: `failed to update asgs for container ${NEW}: its security groups do not compile; it is held on default deny (or its last rules)`,
    });
  });
});

describe("VPA's debug server", () => {
  it('changes the log level at run time, and refuses a level it does not know, changing nothing', async () => {
    const { debug } = await start();
    expect(await debug('/log-level', { method: 'POST', body: 'error' })).toEqual({ status: 200, body: '' });
    expect(log.level).toBe('error');
    expect(await debug('/log-level', { method: 'POST', body: 'loud' })).toMatchObject({ status: 400 });
    expect(log.level).toBe('error');
    expect(await debug('/log-level', { method: 'POST', body: 'fatal' })).toMatchObject({ status: 200 });
    expect(await debug('/log-level')).toMatchObject({ status: 405 });
  });

  it('switches c2c logging at run time and applies it before answering; bad JSON changes nothing', async () => {
    await cp('rules/c2c-ipv4-overlay', directory, { recursive: true, force: true });
    const { debug } = await start();
    expect(await debug('/iptables-c2c-logging')).toEqual({ status: 200, body: '{"enabled":false}\n' });
    const before = await dataplane.save(4, 'filter');
    expect(await debug('/iptables-c2c-logging', { method: 'PUT', body: '{"enabled":' })).toEqual({
      status: 400,
      body: '{ "error": "decoding request body as json" }',
    });
    expect(await debug('/iptables-c2c-logging', { method: 'PUT', body: '{"on":true}' })).toEqual({
      status: 400,
      body: `{ "error": "missing required key 'enabled'" }`,
    });
    expect(await dataplane.save(4, 'filter')).toBe(before);
    expect(await debug('/iptables-c2c-logging', { method: 'PUT', body: '{"enabled":true}' })).toEqual({
      status: 200,
      body: '{"enabled":true}\n',
    });
    expect(await dataplane.save(4, 'filter')).toContain('--log-prefix "OK_');
    expect(await debug('/livez')).toEqual({ status: 200, body: '{"status":"alive"}\n' });
  });
});
