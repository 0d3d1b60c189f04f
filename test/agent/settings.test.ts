import { describe, expect, it } from 'vitest';
import { agentSettings, type RawAgentSettings } from '../../src/agent/settings.js';
import { type AgentFlags, toRaw } from '../../src/cli/agent-command.js';

const everyFlag: Required<Omit<AgentFlags, 'config' | 'once' | 'scenarioDir'>> = {
  policyServerUrl: 'https://policy-server.service.cf.internal:4003',
  ca: '/ca.pem',
  cert: '/cert.pem',
  key: '/key.pem',
  serverName: 'policy-server.service.cf.internal',
  timeout: '5',
  maxResponseMb: '32',
  pageLimit: '200',
  idsPerRequest: '40',
  containers: '/var/vcap/data/container-metadata/store.json',
  endpoints: '/endpoints.json',
  asgcConfig: '/asgc.json',
  interval: '30',
  asgInterval: '60',
  resyncInterval: '300',
  canaryInterval: '15',
  jitter: '0.2',
  backoff: '2',
  family: 6,
  netns: 'cell-1',
  backend: 'legacy',
  listen: '[::1]:9999',
  lockWait: '5',
  lockFile: '/var/vcap/data/garden-cni/iptables.lock',
  logLevel: 'debug',
  vpaConfig: '/var/vcap/jobs/vxlan-policy-agent/config/vxlan-policy-agent.json',
  cniConfig: '/var/vcap/jobs/silk-cni/config/cni/cni-wrapper-plugin.conflist',
};

describe('agent settings', () => {
  it('has a flag for every key of the settings file, and flags win over the file', () => {
    const file: RawAgentSettings = {
      policy_server: {
        url: 'https://elsewhere:1',
        ca_file: '/x',
        cert_file: '/x',
        key_file: '/x',
        server_name: 'x',
        timeout_seconds: 1,
        max_response_mb: 1,
        page_limit: 1,
        ids_per_request: 1,
      },
      containers_file: '/x',
      endpoints_file: '/x',
      asgc_config_file: '/x',
      interval_seconds: 1,
      asg_interval_seconds: 1,
      resync_interval_seconds: 1,
      canary_interval_seconds: 1,
      jitter: 0,
      backoff_seconds: 1,
      families: [4],
      netns: 'x',
      backend: 'nft',
      listen: '127.0.0.1:1',
      lock_wait_seconds: 1,
      lock_file: '/x',
      log_level: 'error',
      vpa_config_file: '/x',
      cni_config_file: '/x',
    };
    const raw = toRaw(everyFlag);
    // Every key the file can hold (but the other source) is set by some flag.
    expect(Object.keys(raw).sort()).toEqual(Object.keys(file).sort());
    expect(Object.keys(raw.policy_server ?? {}).sort()).toEqual(Object.keys(file.policy_server ?? {}).sort());
    const result = agentSettings(file, raw, 'agent.json');
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value).toEqual({
      source: {
        kind: 'policy-server',
        url: 'https://policy-server.service.cf.internal:4003',
        caFile: '/ca.pem',
        certFile: '/cert.pem',
        keyFile: '/key.pem',
        serverName: 'policy-server.service.cf.internal',
        timeoutMs: 5000,
        maxResponseBytes: 32 * 1024 * 1024,
        pageLimit: 200,
        idsPerRequest: 40,
      },
      containersFile: '/var/vcap/data/container-metadata/store.json',
      endpointsFile: '/endpoints.json',
      asgcConfigFile: '/asgc.json',
      intervalMs: 30_000,
      asgIntervalMs: 60_000,
      resyncIntervalMs: 300_000,
      canaryIntervalMs: 15_000,
      jitter: 0.2,
      backoffMs: 2000,
      families: [6],
      netns: 'cell-1',
      backend: 'legacy',
      listen: { host: '::1', port: 9999 },
      lockWaitSeconds: 5,
      lockFile: '/var/vcap/data/garden-cni/iptables.lock',
      logLevel: 'debug',
    });
  });

  it('defaults a scenario directory source to its own files and the documented schedule', () => {
    const result = agentSettings(undefined, toRaw({ scenarioDir: 'rules/dual-stack-cell' }), 'command line');
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value).toMatchObject({
      source: { kind: 'files', directory: 'rules/dual-stack-cell' },
      containersFile: 'rules/dual-stack-cell/containers.json',
      intervalMs: 60_000,
      resyncIntervalMs: 600_000,
      jitter: 0.1,
      backoffMs: 1000,
      families: [4, 6],
      backend: 'auto',
      listen: { host: '127.0.0.1', port: 9180 },
      lockWaitSeconds: 10,
    });
  });

  it('names the file, the pointer and the reason of a bad setting, and asks for exactly one source', () => {
    const bad = agentSettings(
      { scenario_dir: 'x', interval_seconds: 0, policy_server: { url: 'http://plain' } },
      {},
      'agent.json',
    );
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.error.map((error) => `${error.file} ${error.pointer}`)).toEqual(
      expect.arrayContaining(['agent.json /interval_seconds', 'agent.json /policy_server/url']),
    );
    const none = agentSettings({ containers_file: '/x' }, {}, 'agent.json');
    expect(none.ok ? '' : none.error[0]?.message).toMatch(/exactly one source/);
    const withServerNoMetadata = agentSettings(
      undefined,
      toRaw({ policyServerUrl: 'https://p:1', ca: '/c', cert: '/c', key: '/k' }),
      'command line',
    );
    expect(withServerNoMetadata.ok ? '' : withServerNoMetadata.error[0]?.pointer).toBe('/containers_file');
  });
});
