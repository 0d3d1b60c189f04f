// The agent as it runs on a cell: a real HTTPS policy server with mutual TLS on loopback, a
// real network namespace as the cell. It converges, follows changes, and on every fault keeps
// the live rules exactly as they were, says so, and recovers by itself.
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { MemoryLogger } from '../../src/agent/logger.js';
import type { AgentSettings } from '../../src/agent/settings.js';
import type { Backend } from '../../src/iptables/backend.js';
import { defaultRunner, type Runner, runnerWithEnv } from '../../src/exec/process.js';
import type { Family } from '../../src/model/address.js';
import { renderRuleset } from '../../src/render/save-text.js';
import { makeCertificates, SERVER_NAME, type TestCertificates } from '../support/certs.js';
import { kernelTestsEnabled, mustRun, save, savedSets, FOREIGN_RAW_TABLE } from '../support/kernel.js';
import { formatSetMember } from '../../src/ir/ipset.js';
import { FakePolicyServer } from '../support/policy-server.js';
import { compileDirectory } from '../support/scenarios.js';

const enabled = kernelTestsEnabled('agent');

let certificates: TestCertificates;
let server: FakePolicyServer;

async function eventually(check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not within ${timeoutMs} ms`);
}

/** A cell: a namespace, its container metadata and asgc configuration, its policy on the server. */
class Cell {
  readonly namespace = `asgc-agent-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  directory = '';
  expectedDirectory = '';

  async create(scenario: string): Promise<void> {
    await mustRun(['ip', 'netns', 'add', this.namespace]);
    this.directory = await mkdtemp(join(tmpdir(), 'asgc-agent-cell-'));
    this.expectedDirectory = await mkdtemp(join(tmpdir(), 'asgc-agent-expected-'));
    await cp(join('rules', scenario), this.expectedDirectory, { recursive: true });
    await cp(join('rules', scenario, 'containers.json'), join(this.directory, 'containers.json'));
    await cp(join('rules', scenario, 'config.json'), join(this.directory, 'config.json')).catch(() => undefined);
    await this.publish();
  }

  /** Serve the expected scenario's documents from the policy server. */
  async publish(): Promise<void> {
    const document = JSON.parse(await readFile(join(this.expectedDirectory, 'security_groups.json'), 'utf8')) as
      { security_groups: unknown[] } | { security_groups: unknown[] }[];
    const groups = Array.isArray(document) ? document.flatMap((page) => page.security_groups) : document.security_groups;
    const policies = await readFile(join(this.expectedDirectory, 'policies.json'), 'utf8').then(
      (text) => (JSON.parse(text) as { policies: unknown[] }).policies,
      () => [],
    );
    server.setDocuments(groups, policies);
  }

  async editGroups(edit: (groups: { name: string; rules: { ports?: string }[] }[]) => void): Promise<void> {
    const path = join(this.expectedDirectory, 'security_groups.json');
    const document = JSON.parse(await readFile(path, 'utf8')) as {
      security_groups: { name: string; rules: { ports?: string }[] }[];
    };
    edit(document.security_groups);
    await writeFile(path, JSON.stringify(document));
    await this.publish();
  }

  async editContainers(edit: (containers: Record<string, unknown>) => void): Promise<void> {
    const path = join(this.expectedDirectory, 'containers.json');
    const containers = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    edit(containers);
    await writeFile(path, JSON.stringify(containers));
    await cp(path, join(this.directory, 'containers.json'));
  }

  async expected(family: Family): Promise<string> {
    return renderRuleset((await compileDirectory(this.expectedDirectory)).cell[family]);
  }

  async live(family: Family, backend: Backend = 'nft'): Promise<string> {
    return save(this.namespace, backend, family);
  }

  settings(backend: Backend = 'nft', overrides: Partial<AgentSettings> = {}): AgentSettings {
    return {
      source: {
        kind: 'policy-server',
        url: server.url,
        caFile: certificates.caFile,
        certFile: certificates.clientCertFile,
        keyFile: certificates.clientKeyFile,
        serverName: SERVER_NAME,
        timeoutMs: 500,
        maxResponseBytes: 1 << 22,
        pageLimit: 2,
        idsPerRequest: 50,
      },
      containersFile: join(this.directory, 'containers.json'),
      asgcConfigFile: join(this.directory, 'config.json'),
      intervalMs: 300,
      asgIntervalMs: 300,
      resyncIntervalMs: 60_000,
      jitter: 0,
      backoffMs: 100,
      families: [4, 6],
      netns: this.namespace,
      backend,
      listen: { host: '127.0.0.1', port: 0 },
      lockWaitSeconds: 1,
      logLevel: 'debug',
      ...overrides,
    };
  }

  async destroy(): Promise<void> {
    await mustRun(['ip', 'netns', 'del', this.namespace]);
    await rm(this.directory, { recursive: true, force: true });
    await rm(this.expectedDirectory, { recursive: true, force: true });
  }
}

async function http(agent: Agent, method: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${agent.port}${path}`, { method });
  return { status: response.status, body: await response.text() };
}

/** A configuration change for the agent to write: deny-networks' 169.254.0.0/16 becomes a /17. */
async function narrowDenyNetwork(cell: Cell): Promise<void> {
  const path = join(cell.expectedDirectory, 'config.json');
  await writeFile(path, (await readFile(path, 'utf8')).replace('169.254.0.0/16', '169.254.0.0/17'));
  await cp(path, join(cell.directory, 'config.json'));
}

/** Another process holding an flock on `file` (a minute at most), once it holds it. */
async function holdLock(file: string): Promise<ChildProcess> {
  const holder = spawn(
    'python3',
    [
      '-c',
      'import fcntl,sys,time; f=open(sys.argv[1],"w"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)',
      file,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve) => holder.stdout?.once('data', resolve));
  return holder;
}

const healthy = (agent: Agent) => async () => (await http(agent, 'GET', '/healthz')).status === 200;
const degraded = (agent: Agent) => async () => (await http(agent, 'GET', '/healthz')).status === 503;

describe.skipIf(!enabled)('the agent on a cell', () => {
  beforeAll(async () => {
    certificates = await makeCertificates();
    server = new FakePolicyServer(certificates);
    await server.start();
  }, 30_000);
  afterAll(async () => {
    await server.stop();
    await rm(certificates.directory, { recursive: true, force: true });
  });

  it('converges to the golden ruleset, then follows ASG and container changes within a cycle', async () => {
    const cell = new Cell();
    await cell.create('dual-stack-cell');
    const log = new MemoryLogger();
    const agent = await Agent.start(cell.settings(), { log });
    try {
      await eventually(healthy(agent));
      for (const family of [4, 6] as const)
        expect(await cell.live(family)).toBe(
          await readFile(join('golden/dual-stack-cell', family === 4 ? 'iptables.rules' : 'ip6tables.rules'), 'utf8'),
        );
      // An ASG change on the server: applied by the next scheduled cycle.
      const path = join(cell.expectedDirectory, 'security_groups.json');
      const text = await readFile(path, 'utf8');
      await writeFile(path, text.replace('443,8443', '443,9443'));
      await cell.publish();
      await eventually(async () => (await cell.live(6)) === (await cell.expected(6)));
      expect(await cell.live(6)).toMatch(/--dports? [0-9,:]*\b9443\b/);
      // A container removed from the metadata file, then added back.
      let removed: unknown;
      await cell.editContainers((containers) => {
        removed = containers['b6e1d0c9-8f7a-4b2c-5d3e-4f5a'];
        delete containers['b6e1d0c9-8f7a-4b2c-5d3e-4f5a'];
      });
      await eventually(async () => !(await cell.live(4)).includes('10.255.7.13'));
      expect(await cell.live(4)).toBe(await cell.expected(4));
      await cell.editContainers((containers) => {
        containers['b6e1d0c9-8f7a-4b2c-5d3e-4f5a'] = removed;
      });
      await eventually(async () => (await cell.live(4)) === (await cell.expected(4)));
      // Its endpoints.
      const metrics = await http(agent, 'GET', '/metrics');
      expect(metrics.body).toMatch(/^asgc_restores_total\{family="4"\} \d+$/m);
      expect(metrics.body).toMatch(/^asgc_last_success_timestamp_seconds \d+$/m);
      expect((await http(agent, 'POST', '/force-sync?container=b6e1d0c9-8f7a-4b2c-5d3e-4f5a')).status).toBe(200);
      expect((await http(agent, 'POST', '/force-sync?container=nobody')).status).toBe(404);
      expect((await http(agent, 'GET', '/force-sync')).status).toBe(405);
      expect(log.entries.some((entry) => entry.event === 'sync.cycle' && entry.fields.status === 'applied')).toBe(true);
    } finally {
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  it("leaves others' rules in the raw and filter tables alone, and takes its anti-spoofing chain out when it is turned off", async () => {
    const cell = new Cell();
    await cell.create('dual-stack-cell');
    const foreign = [
      ...FOREIGN_RAW_TABLE,
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A INPUT -i lo -j ACCEPT',
      'COMMIT',
      '',
    ].join('\n');
    await mustRun(['ip', 'netns', 'exec', cell.namespace, 'ip6tables-nft-restore'], foreign);
    /** The lines of both tables that are not asgc's. */
    const others = async () => (await cell.live(6)).split('\n').filter((line) => line !== '' && !line.includes('asgc-'));
    const before = await others();
    const agent = await Agent.start(cell.settings(), { log: new MemoryLogger() });
    try {
      await eventually(async () => (await cell.live(6)).includes('-A PREROUTING -j asgc-antispoof'));
      expect(await others()).toEqual(before);
      expect((await cell.live(6)).split('\n').filter((line) => line.startsWith('-A PREROUTING'))).toEqual([
        '-A PREROUTING -j asgc-antispoof',
        '-A PREROUTING -j VXLAN-NOTRACK',
      ]);
      // Turned off for IPv6: its raw chain and hook go, in the raw table's own transaction.
      await writeFile(join(cell.directory, 'config.json'), JSON.stringify({ anti_spoofing: { ipv6: false } }));
      await eventually(async () => !(await cell.live(6)).includes('asgc-antispoof'));
      expect(await others()).toEqual(before);
      expect(await cell.live(6)).toContain('-A INPUT -j asgc-input');
    } finally {
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  it('with ipsets: makes the sets before the rules, follows a changed list with a new set and retires the old one', async () => {
    const cell = new Cell();
    await cell.create('partner-list-ipsets');
    const log = new MemoryLogger();
    const agent = await Agent.start(cell.settings(), { log });
    /** The namespace's sets of asgc's, and those the expected compile names, with sorted members. */
    const sets = async () => {
      const live = [...(await savedSets(cell.namespace)).values()].map((set) => [set.name, [...set.members].sort()]);
      const expected = (await compileDirectory(cell.expectedDirectory)).cell;
      const wanted = ([4, 6] as const)
        .flatMap((family) => expected[family].sets ?? [])
        .map((set) => [set.name, set.members.map(formatSetMember).sort()]);
      const byName = (entries: (string | string[])[][]) =>
        Object.fromEntries(entries.sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
      return { live: byName(live), wanted: byName(wanted) };
    };
    const converged = async () => {
      const { live, wanted } = await sets();
      return (
        (await cell.live(4)) === (await cell.expected(4)) &&
        (await cell.live(6)) === (await cell.expected(6)) &&
        JSON.stringify(live) === JSON.stringify(wanted)
      );
    };
    try {
      await eventually(healthy(agent));
      await eventually(converged);
      const before = Object.keys((await sets()).wanted);
      // The partner list loses its first host: a new set for it, the old one destroyed.
      const path = join(cell.expectedDirectory, 'security_groups.json');
      const document = JSON.parse(await readFile(path, 'utf8')) as { security_groups: { rules: string }[] };
      const group = document.security_groups[0] as { rules: string };
      const rules = JSON.parse(group.rules) as { destination: string }[];
      (rules[0] as { destination: string }).destination = (rules[0] as { destination: string }).destination
        .split(',')
        .slice(1)
        .join(',');
      group.rules = JSON.stringify(rules);
      await writeFile(path, JSON.stringify(document));
      await cell.publish();
      await eventually(
        async () => (await converged()) && JSON.stringify(Object.keys((await sets()).wanted)) !== JSON.stringify(before),
      );
      const after = Object.keys((await sets()).live);
      expect(after.filter((name) => !before.includes(name))).toHaveLength(1);
      expect(before.filter((name) => !after.includes(name))).toHaveLength(1);
      expect(
        log.entries.some((entry) => entry.event === 'sync.ipsets' && String(entry.fields.message).includes('destroyed')),
      ).toBe(true);
    } finally {
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  it('repairs drift made by others: at once when its canary shows it, else when the resync is due', async () => {
    const cell = new Cell();
    await cell.create('dual-stack-cell');
    let skew = 0;
    const agent = await Agent.start(cell.settings('nft', { resyncIntervalMs: 60_000 }), {
      log: new MemoryLogger(),
      now: () => Date.now() + skew,
    });
    const inSync = async () =>
      (await cell.live(4)) === (await cell.expected(4)) && (await cell.live(6)) === (await cell.expected(6));
    const iptables = (family: Family, ...args: string[]) =>
      mustRun(['ip', 'netns', 'exec', cell.namespace, family === 4 ? 'iptables-nft' : 'ip6tables-nft', ...args]);
    try {
      await eventually(inSync);
      // Someone flushes and deletes every chain (as a careless `iptables -F; iptables -X` would).
      for (const family of [4, 6] as const) {
        await iptables(family, '-F');
        await iptables(family, '-X');
      }
      await eventually(inSync, 3000);
      // Someone deletes one rule of a container's chain: the canary cannot see that, the
      // scheduled full read-back does.
      const chain = (await cell.live(4))
        .split('\n')
        .find((line) => line.startsWith(':asgc-o-'))
        ?.slice(1)
        .split(' ')[0] as string;
      await iptables(4, '-D', chain, '1');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await inSync()).toBe(false);
      skew += 61_000;
      await eventually(inSync, 3000);
    } finally {
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  describe('faults: the live rules stay as they are, the agent says so and recovers by itself', () => {
    let cell: Cell;
    let agent: Agent;
    let failRestores = false;
    const run: Runner = (argv, input) =>
      failRestores && argv.some((word) => word.endsWith('-restore'))
        ? Promise.resolve({ code: 1, stdout: '', stderr: 'iptables-restore: line 3 failed (injected)' })
        : defaultRunner(argv, input);

    beforeAll(async () => {
      cell = new Cell();
      await cell.create('lifecycles-two-spaces');
      agent = await Agent.start(cell.settings(), { log: new MemoryLogger(), run });
      await eventually(healthy(agent));
    }, 30_000);
    afterAll(async () => {
      await agent.close();
      await cell.destroy();
    });

    let version = 5432;
    /** Inject a fault together with a policy change, check nothing moved, then heal and converge. */
    async function underFault(inject: () => Promise<void>, heal: () => Promise<void>, kind: string): Promise<void> {
      const before = [await cell.live(4), await cell.live(6)];
      const errors = () =>
        http(agent, 'GET', '/metrics').then((m) =>
          Number(new RegExp(`^asgc_errors_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(m.body)?.[1] ?? 0),
        );
      const errorsBefore = await errors();
      version++;
      await cell.editGroups((groups) => {
        (groups.find((group) => group.name === 'orders-db')?.rules[0] as { ports: string }).ports = String(version);
      });
      await inject();
      await eventually(async () => (await errors()) > errorsBefore);
      await eventually(degraded(agent));
      expect([await cell.live(4), await cell.live(6)]).toEqual(before);
      await heal();
      await eventually(healthy(agent));
      await eventually(async () => (await cell.live(4)) === (await cell.expected(4)));
      expect(await cell.live(4)).toContain(`--dport ${version}`);
    }

    it('policy server down', async () => {
      await underFault(
        () => server.stop(),
        () => server.start(),
        'fetch',
      );
    }, 30_000);

    it.each([
      ['HTTP 500', { kind: 'status', status: 500 }],
      ['slow beyond the timeout', { kind: 'slow', ms: 1500 }],
      ['truncated JSON', { kind: 'truncated' }],
      ['a page that 404s in the middle of paging', { kind: 'missing-page' }],
    ] as const)(
      '%s',
      async (_name, fault) => {
        await underFault(
          async () => void (server.fault = fault),
          async () => void (server.fault = undefined),
          'fetch',
        );
      },
      30_000,
    );

    it('a client certificate the server does not trust', async () => {
      const rogue = cell.settings();
      const settings = {
        ...rogue,
        source: {
          ...(rogue.source as Extract<AgentSettings['source'], { kind: 'policy-server' }>),
          certFile: certificates.rogueCertFile,
          keyFile: certificates.rogueKeyFile,
        },
      };
      await underFault(
        () => agent.reconfigure(settings),
        () => agent.reconfigure(cell.settings()),
        'fetch',
      );
    }, 30_000);

    it('a half-written metadata file', async () => {
      const path = join(cell.directory, 'containers.json');
      const whole = await readFile(path, 'utf8');
      await underFault(
        () => writeFile(path, whole.slice(0, whole.length / 2)),
        () => writeFile(path, whole),
        'metadata',
      );
    }, 30_000);

    it('a restore that fails', async () => {
      await underFault(
        async () => void (failRestores = true),
        async () => void (failRestores = false),
        'apply',
      );
    }, 30_000);
  });

  it('xtables lock held by another process (legacy backend)', async () => {
    const cell = new Cell();
    await cell.create('deny-networks');
    const lockFile = join(cell.directory, 'xtables.lock');
    const agent = await Agent.start(cell.settings('legacy'), {
      log: new MemoryLogger(),
      run: runnerWithEnv({ XTABLES_LOCKFILE: lockFile }),
    });
    let holder: ChildProcess | undefined;
    try {
      await eventually(healthy(agent));
      const before = await cell.live(4, 'legacy');
      holder = await holdLock(lockFile);
      await narrowDenyNetwork(cell);
      const force = await http(agent, 'POST', '/force-sync');
      expect(force.status).toBe(503);
      expect(JSON.parse(force.body).problems).toContainEqual(expect.objectContaining({ kind: 'lock', family: 4 }));
      expect(await cell.live(4, 'legacy')).toBe(before);
      holder.kill();
      await eventually(async () => (await cell.live(4, 'legacy')).includes('169.254.0.0/17'));
      await eventually(healthy(agent));
    } finally {
      holder?.kill();
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  it("the CNI's iptables lock file held by another process (VPA's iptables_lock_file, nf_tables)", async () => {
    const cell = new Cell();
    await cell.create('deny-networks');
    const lockFile = join(cell.directory, 'iptables.lock');
    const agent = await Agent.start(cell.settings('nft', { lockFile }), { log: new MemoryLogger() });
    let holder: ChildProcess | undefined;
    try {
      await eventually(healthy(agent));
      const before = { 4: await cell.live(4), 6: await cell.live(6) };
      holder = await holdLock(lockFile);
      await narrowDenyNetwork(cell);
      const force = await http(agent, 'POST', '/force-sync');
      expect(force.status).toBe(503);
      expect(JSON.parse(force.body).problems).toContainEqual(
        expect.objectContaining({ kind: 'lock', family: 4, message: expect.stringContaining(`the iptables lock ${lockFile}`) }),
      );
      expect({ 4: await cell.live(4), 6: await cell.live(6) }).toEqual(before);
      holder.kill();
      await eventually(async () => (await cell.live(4)).includes('169.254.0.0/17'));
      await eventually(healthy(agent));
    } finally {
      holder?.kill();
      await agent.close();
      await cell.destroy();
    }
  }, 60_000);

  it('SIGTERM during a cycle: exits 0, and no family is left half-applied', async () => {
    const cell = new Cell();
    await cell.create('dual-stack-cell');
    const settingsFile = join(cell.directory, 'agent.json');
    const settings = cell.settings();
    const source = settings.source as Extract<AgentSettings['source'], { kind: 'policy-server' }>;
    await writeFile(
      settingsFile,
      JSON.stringify({
        policy_server: {
          url: source.url,
          ca_file: source.caFile,
          cert_file: source.certFile,
          key_file: source.keyFile,
          server_name: SERVER_NAME,
          timeout_seconds: 5,
        },
        containers_file: settings.containersFile,
        netns: cell.namespace,
        backend: 'nft',
        interval_seconds: 60,
        listen: '',
      }),
    );
    server.fault = { kind: 'slow', ms: 700 };
    const child = spawn(process.execPath, ['bin/asgc', 'agent', '--config', settingsFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    try {
      await eventually(async () => output.includes('"agent.started"'), 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(0);
      // The signal came while the first cycle was fetching (every request takes 700 ms): the
      // agent finished that cycle, applying each family whole, and only then stopped.
      expect(output.indexOf('"agent.stopping"')).toBeLessThan(output.indexOf('"sync.cycle"'));
      expect(output.indexOf('"sync.cycle"')).toBeLessThan(output.indexOf('"agent.stopped"'));
      for (const family of [4, 6] as const) expect(await cell.live(family)).toBe(await cell.expected(family));
    } finally {
      server.fault = undefined;
      child.kill('SIGKILL');
      await cell.destroy();
    }
  }, 30_000);
});
