// deploy/bosh: every template of the asgc job rendered with Ruby's ERB through a stand-in for
// BOSH's helpers (test/support/bosh-render.rb), once with the defaults and once with every
// property set; the rendered files then load through asgc's own settings and config schemas.
import { execFile } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/cli/agent-command.js';
import { ingestConfig } from '../../src/ingest/config.js';

const exec = promisify(execFile);
const JOB = resolve('deploy/bosh/jobs/asgc');
const CONFLIST = resolve('test/fixtures/vpa/cni-wrapper-plugin.conflist');
const hasRuby = await exec('ruby', ['--version']).then(
  () => true,
  () => false,
);
if (!hasRuby) {
  if (process.env.CI === 'true') throw new Error('the BOSH job test needs ruby (apt-get install -y ruby) in CI');
  process.stderr.write('\n*** SKIPPING THE BOSH JOB TEST: ruby is not installed ***\n\n');
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-bosh-'));
});
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const yamlAsJson = async (file: string): Promise<unknown> =>
  JSON.parse(
    (await exec('ruby', ['-ryaml', '-rjson', '-e', 'puts JSON.generate(YAML.safe_load(File.read(ARGV[0])))', file])).stdout,
  );

const LINKS = {
  cf_network: { properties: { network: '10.255.0.0/16' } },
  cni_config: {
    properties: {
      iptables_logging: false,
      iptables_denied_logs_per_sec: 1,
      deny_networks: { always: [], running: [], staging: [] },
      outbound_connections: { limit: false, burst: 1000, rate_per_sec: 100, dry_run: false },
    },
  },
};
const SPEC = {
  id: 'b1e0c3d2',
  name: 'diego-cell',
  deployment: 'cf',
  address: '10.0.16.5',
  networks: { default: { ip: '10.0.16.5' } },
};
const CERTS = { ca_cert: 'CA PEM', client_cert: 'CERT PEM', client_key: 'KEY PEM' };

/** Every property of the job's spec, set to something other than its default. */
const EVERY_PROPERTY = {
  ...CERTS,
  iptables_logging: true,
  policy_server: { hostname: 'policy.example.internal', internal_listen_port: 4103 },
  policy_poll_interval_seconds: 7,
  enable_asg_syncing: false,
  asg_poll_interval_seconds: 90,
  metron_port: 4457,
  debug_server_port: 9721,
  log_level: 'debug',
  iptables_accepted_udp_logs_per_sec: 50,
  force_policy_poll_cycle_port: 9722,
  enable_overlay_ingress_rules: true,
  disable: false,
  disable_container_network_policy: true,
  loggregator: { use_v2_api: true, v2_api_port: 4458, ca_cert: 'L CA', cert: 'L CERT', key: 'L KEY' },
  asgc: {
    metrics_port: 9280,
    container_prefixes: ['10.255.0.0/16', 'fd00:255::/64'],
    anti_spoofing: { ipv4: true, ipv6: false },
    families: [6],
    backend: 'nft',
    endpoints_file: '/var/vcap/data/asgc/endpoints.json',
    resync_interval_seconds: 300,
    lock_wait_seconds: 20,
    ipset_min_destinations: 32,
  },
};

/** Render the job into a folder of its own; the job's paths pointed at that folder and the CNI fixture. */
async function render(name: string, properties: object, links: object = LINKS): Promise<string> {
  const out = join(work, name);
  await mkdir(out);
  const context = join(work, `${name}.json`);
  await writeFile(context, JSON.stringify({ properties, links, spec: SPEC }));
  await exec('ruby', ['test/support/bosh-render.rb', JOB, context, out]);
  for (const file of ['config/agent.json', 'config/vxlan-policy-agent.json']) {
    const text = await readFile(join(out, file), 'utf8');
    await writeFile(
      join(out, file),
      text
        .replaceAll('/var/vcap/jobs/asgc/', `${out}/`)
        .replaceAll('/var/vcap/jobs/silk-cni/config/cni/cni-wrapper-plugin.conflist', CONFLIST),
    );
  }
  return out;
}

const flatKeys = (tree: object, prefix = ''): string[] =>
  Object.entries(tree).flatMap(([key, value]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? flatKeys(value, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  );

describe.runIf(hasRuby)('the BOSH job deploy/bosh/jobs/asgc', () => {
  it("provides the vpa link silk-cni consumes, with vxlan-policy-agent's type and properties", async () => {
    const spec = (await yamlAsJson(join(JOB, 'spec'))) as { provides: unknown; properties: object };
    expect(spec.provides).toEqual([
      { name: 'vpa', type: 'policy-agent', properties: ['ca_cert', 'client_cert', 'client_key', 'force_policy_poll_cycle_port'] },
    ]);
    // The every-property case below sets every property the spec has.
    expect(flatKeys(EVERY_PROPERTY).sort()).toEqual(Object.keys(spec.properties).sort());
  });

  it('with the defaults: the agent starts from the rendered files, as vxlan-policy-agent would be configured', async () => {
    const out = await render('defaults', CERTS);
    const loaded = await loadSettings({ config: join(out, 'config/agent.json') });
    expect(loaded.errors).toEqual([]);
    const settings = loaded.settings as NonNullable<typeof loaded.settings>;
    expect(settings.listen).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(settings.vpa?.forceListen).toEqual({ host: '127.0.0.1', port: 8722 });
    expect(settings.vpa?.debugListen).toEqual({ host: '127.0.0.1', port: 8721 });
    expect(settings.intervalMs).toBe(5000);
    expect(settings.asgIntervalMs).toBe(60_000);
    expect(settings.lockFile).toBe('/var/vcap/data/garden-cni/iptables.lock');
    expect(settings.containersFile).toBe('/var/vcap/data/container-metadata/store.json');
    expect(settings.families).toEqual([4, 6]);
    expect(settings.source).toMatchObject({ kind: 'policy-server', url: 'https://policy-server.service.cf.internal:4003' });
    expect(await readFile(join(out, 'config/certs/ca.crt'), 'utf8')).toBe('CA PEM\n');
    const config = ingestConfig(JSON.parse(await readFile(join(out, 'config/asgc.json'), 'utf8')), 'asgc.json');
    expect(config.errors).toEqual([]);
    expect(config.config.antiSpoofing).toEqual({ 4: false, 6: true });

    const bpm = (await yamlAsJson(join(out, 'config/bpm.yml'))) as { processes: Record<string, unknown>[] };
    expect(bpm.processes).toHaveLength(1);
    expect(bpm.processes[0]).toMatchObject({
      name: 'asgc',
      executable: '/var/vcap/packages/asgc/bin/asgc',
      args: ['agent', '--config', '/var/vcap/jobs/asgc/config/agent.json'],
      unsafe: { privileged: true },
      capabilities: ['NET_RAW', 'NET_ADMIN'],
      additional_volumes: [
        { path: '/var/vcap/data/container-metadata', writable: true },
        { path: '/var/vcap/data/garden-cni', writable: true },
      ],
    });
    expect(await yamlAsJson(join(out, 'config/prom_scraper_config.yml'))).toEqual({
      port: 9180,
      source_id: 'asgc',
      instance_id: SPEC.id,
      scheme: 'http',
      path: '/metrics',
    });
    const monit = await readFile(join(out, 'monit'), 'utf8');
    expect(monit).toContain('check process asgc');
    expect(monit).toMatch(/port 9180\s+protocol HTTP\s+request "\/livez"/);
    const postStart = join(out, 'bin/post-start');
    expect((await exec('bash', ['-n', postStart])).stderr).toBe('');
    expect(await readFile(postStart, 'utf8')).toContain('http://127.0.0.1:9180/livez');
  });

  it('with every property set: each reaches the file that uses it', async () => {
    const out = await render('every', EVERY_PROPERTY, {
      ...LINKS,
      iptables: { properties: { garden: { iptables_bin_dir: '/var/vcap/packages/iptables/sbin' } } },
    });
    const loaded = await loadSettings({ config: join(out, 'config/agent.json') });
    expect(loaded.errors).toEqual([]);
    const settings = loaded.settings as NonNullable<typeof loaded.settings>;
    expect(settings.listen).toEqual({ host: '127.0.0.1', port: 9280 });
    expect(settings.vpa?.forceListen?.port).toBe(9722);
    expect(settings.vpa?.debugListen?.port).toBe(9721);
    expect(settings.vpa?.enableAsgSyncing).toBe(false);
    expect(settings.vpa?.config).toMatchObject({ c2c_logging: true, disable_container_network_policy: true });
    expect(settings.intervalMs).toBe(7000);
    expect(settings.asgIntervalMs).toBe(90_000);
    expect(settings.logLevel).toBe('debug');
    expect(settings.families).toEqual([6]);
    expect(settings.backend).toBe('nft');
    expect(settings.resyncIntervalMs).toBe(300_000);
    expect(settings.lockWaitSeconds).toBe(20);
    expect(settings.endpointsFile).toBe('/var/vcap/data/asgc/endpoints.json');
    expect(settings.source).toMatchObject({ url: 'https://policy.example.internal:4103' });
    // Keys VPA has and asgc ignores are reported, not refused.
    expect(loaded.notes.join('\n')).toMatch(/loggregator/);
    const config = ingestConfig(JSON.parse(await readFile(join(out, 'config/asgc.json'), 'utf8')), 'asgc.json');
    expect(config.errors).toEqual([]);
    expect(config.config.antiSpoofing).toEqual({ 4: true, 6: false });
    expect(config.config.ipsetMinDestinations).toBe(32);
    expect(config.config.containerPrefixes).toHaveLength(2);
    const bpm = (await yamlAsJson(join(out, 'config/bpm.yml'))) as { processes: { env: { PATH: string } }[] };
    expect(bpm.processes[0]?.env.PATH.split(':')[0]).toBe('/var/vcap/packages/iptables/sbin');
    expect(await yamlAsJson(join(out, 'config/prom_scraper_config.yml'))).toMatchObject({ port: 9280 });
  });

  it('disabled: monit has no process and post-start does nothing', async () => {
    const out = await render('disabled', { ...CERTS, disable: true });
    expect((await readFile(join(out, 'monit'), 'utf8')).trim()).toBe('');
    expect((await exec('bash', [join(out, 'bin/post-start')])).stderr).toBe('');
  });

  it('refuses to render without the policy server certificates, as BOSH would', async () => {
    await expect(render('no-certs', {})).rejects.toThrow(/Can't find property 'ca_cert'/);
  });

  it('the package installs the single executable', async () => {
    const source = join(work, 'package-source');
    const target = join(work, 'package-target');
    await mkdir(join(source, 'asgc'), { recursive: true });
    await writeFile(join(source, 'asgc', 'asgc'), '#!/bin/sh\necho asgc\n');
    await exec('bash', [resolve('deploy/bosh/packages/asgc/packaging')], {
      cwd: source,
      env: { ...process.env, BOSH_INSTALL_TARGET: target },
    });
    await access(join(target, 'bin', 'asgc'), constants.X_OK);
    expect((await stat(join(target, 'bin', 'asgc'))).mode & 0o777).toBe(0o755);
    const spec = (await yamlAsJson(resolve('deploy/bosh/packages/asgc/spec'))) as { files: string[] };
    expect(spec.files).toEqual(['asgc/asgc']);
  });

  it('the cf-deployment ops file swaps vxlan-policy-agent for asgc with the properties the job knows', async () => {
    const ops = (await yamlAsJson(resolve('deploy/bosh/operations/use-asgc.yml'))) as {
      type: string;
      path: string;
      value?: unknown;
    }[];
    expect(ops.find((op) => op.type === 'remove')?.path).toBe('/instance_groups/name=diego-cell/jobs/name=vxlan-policy-agent');
    const job = ops.find((op) => op.path.endsWith('/jobs/-'))?.value as { name: string; release: string; properties: object };
    expect(job).toMatchObject({ name: 'asgc', release: 'asgc' });
    const spec = (await yamlAsJson(join(JOB, 'spec'))) as { properties: object };
    for (const key of flatKeys(job.properties)) expect(Object.keys(spec.properties)).toContain(key);
    expect(ops.find((op) => op.path.startsWith('/releases/'))?.value).toMatchObject({ name: 'asgc' });
  });
});
