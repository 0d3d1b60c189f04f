// vxlan-policy-agent.json as the BOSH job renders it (defaults, and every option set), with
// silk-cni's conflist, read as asgc's settings; and what a bad file gets.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { agentSettings } from '../../src/agent/settings.js';
import { vpaSettings, type VpaFacts } from '../../src/agent/vpa-config.js';
import { ingestConfig } from '../../src/ingest/config.js';
import { formatInputError } from '../../src/ingest/input-error.js';

const FIXTURES = 'test/fixtures/vpa';
const DEFAULTS = `${FIXTURES}/vxlan-policy-agent.json`;
const EVERY_OPTION = `${FIXTURES}/vxlan-policy-agent-every-option.json`;
const CONFLIST = `${FIXTURES}/cni-wrapper-plugin.conflist`;
const FACTS: VpaFacts = { missingFiles: new Set(), interfaceOf: new Map([['10.0.16.5', 'eth0']]) };

const read = async (file: string): Promise<unknown> => JSON.parse(await readFile(file, 'utf8'));

describe("VPA's config file", () => {
  it("runs as the job renders it with its defaults: VPA's schedules, endpoints, lock, and the CNI's host access", async () => {
    const vpa = vpaSettings(await read(DEFAULTS), DEFAULTS, FACTS, { document: await read(CONFLIST), file: CONFLIST });
    if (!vpa.ok) throw new Error(vpa.error.map(formatInputError).join('\n'));
    const settings = agentSettings(vpa.value.raw, {}, DEFAULTS, vpa.value.mode);
    if (!settings.ok) throw new Error(settings.error.map(formatInputError).join('\n'));
    expect(settings.value).toMatchObject({
      source: {
        kind: 'policy-server',
        url: 'https://policy-server.service.cf.internal:4003',
        caFile: '/var/vcap/jobs/vxlan-policy-agent/config/certs/ca.crt',
        timeoutMs: 5000,
      },
      containersFile: '/var/vcap/data/container-metadata/store.json',
      intervalMs: 5000,
      asgIntervalMs: 60_000,
      lockFile: '/var/vcap/data/garden-cni/iptables.lock',
      logLevel: 'info',
      vpa: {
        forceListen: { host: '127.0.0.1', port: 8722 },
        debugListen: { host: '127.0.0.1', port: 8721 },
        enableAsgSyncing: true,
        logSource: 'cfnetworking',
      },
    });
    expect(vpa.value.mode.config).toEqual({
      ingress_tag_ports: 'all',
      c2c_logging: false,
      asg_logging: false,
      accepted_udp_logs_per_sec: 100,
      denied_logs_per_sec: 1,
      disable_container_network_policy: false,
      overlay_network: '10.255.0.0/16',
      host_interfaces: ['eth0'],
      deny_networks: { always: [], running: [], staging: [] },
      dns_servers: ['169.254.0.2'],
      host_tcp_services: ['169.254.0.2:8853'],
      host_udp_services: [],
      ingress_tag: 'ffff0000',
    });
    expect(ingestConfig(vpa.value.mode.config, DEFAULTS).errors).toEqual([]);
    expect(vpa.value.notes).toEqual([
      `${DEFAULTS}: /vni: ignored (no meaning for iptables)`,
      `${DEFAULTS}: /metron_address: ignored (no meaning for iptables)`,
      `${DEFAULTS}: /loggregator: ignored (no meaning for iptables)`,
    ]);
  });

  it('maps every option: logging, the outbound limit with its dry run, disabled c2c policy, every underlay interface', async () => {
    const facts: VpaFacts = {
      ...FACTS,
      interfaceOf: new Map([
        ['10.0.16.5', 'eth0'],
        ['10.0.17.5', 'eth1'],
      ]),
    };
    const vpa = vpaSettings(await read(EVERY_OPTION), EVERY_OPTION, facts);
    if (!vpa.ok) throw new Error(vpa.error.map(formatInputError).join('\n'));
    expect(vpa.value.raw).toMatchObject({
      interval_seconds: 2,
      asg_interval_seconds: 30,
      log_level: 'debug',
      policy_server: { timeout_seconds: 7 },
    });
    expect(vpa.value.mode).toMatchObject({ forceListen: { port: 18722 }, debugListen: { port: 18721 } });
    const { config, errors } = ingestConfig(vpa.value.mode.config, EVERY_OPTION);
    expect(errors).toEqual([]);
    expect(config).toMatchObject({
      asgLogging: true,
      c2cLogging: true,
      acceptedUdpLogsPerSec: 50,
      deniedLogsPerSec: 3,
      hostInterfaces: ['eth0', 'eth1'],
      disableContainerNetworkPolicy: true,
      ingressTagPorts: 'all',
      // CF's expiry: ceil(900 / 200) seconds.
      outboundConnections: { perSecond: 200, burst: 900, expirySeconds: 5, logging: true, dryRun: true },
    });
    expect(config.denyNetworks.always).toHaveLength(1);
    expect(vpa.value.notes).toContainEqual(expect.stringContaining('/enable_overlay_ingress_rules:'));
  });

  it('says where an unknown key, a wrong type, a missing certificate or a bad conflist is, and nothing runs', async () => {
    const document = { ...((await read(DEFAULTS)) as object), poll_interval: '5', pol_interval: 5 };
    const bad = vpaSettings(document, DEFAULTS, FACTS);
    expect(bad.ok ? [] : bad.error.map(formatInputError)).toEqual([
      `${DEFAULTS}: /pol_interval: unknown field`,
      `${DEFAULTS}: /poll_interval: must be an integer, not "5"`,
    ]);
    const missing = vpaSettings(await read(DEFAULTS), DEFAULTS, {
      ...FACTS,
      missingFiles: new Set(['/var/vcap/jobs/vxlan-policy-agent/config/certs/client.key']),
    });
    expect(missing.ok ? [] : missing.error.map(formatInputError)).toEqual([
      `${DEFAULTS}: /client_key_file: no such file: /var/vcap/jobs/vxlan-policy-agent/config/certs/client.key`,
    ]);
    const conflist = vpaSettings(await read(DEFAULTS), DEFAULTS, FACTS, {
      document: { plugins: [{ dns_servers: '169.254.0.2' }] },
      file: CONFLIST,
    });
    expect(conflist.ok ? [] : conflist.error.map(formatInputError)).toEqual([
      `${CONFLIST}: /plugins/0/dns_servers: must be an array, not "169.254.0.2"`,
    ]);
    // An underlay address no interface has: ASGs hold for every interface, and it is said.
    const unknown = vpaSettings(await read(DEFAULTS), DEFAULTS, { ...FACTS, interfaceOf: new Map() });
    expect(unknown.ok && unknown.value.notes).toContainEqual(
      `${DEFAULTS}: /underlay_ips/0: no interface has 10.0.16.5: ASGs hold for traffic out of every interface`,
    );
  });
});
