// The agent's settings: a JSON file, every key also a command-line flag (flags win), checked
// like every other input (file, JSON pointer, reason).
import { ErrorSink, type InputError } from '../ingest/input-error.js';
import { checkSchema, compileSchema } from '../ingest/schema.js';
import type { Backend } from '../iptables/backend.js';
import type { Family } from '../model/address.js';
import { type Result, fail, ok } from '../model/result.js';
import type { Level } from './logger.js';

/** The settings file's keys (snake_case, as BOSH job properties are). */
export interface RawAgentSettings {
  scenario_dir?: string;
  policy_server?: {
    url?: string;
    ca_file?: string;
    cert_file?: string;
    key_file?: string;
    server_name?: string;
    timeout_seconds?: number;
    max_response_mb?: number;
    page_limit?: number;
    ids_per_request?: number;
  };
  containers_file?: string;
  endpoints_file?: string;
  asgc_config_file?: string;
  interval_seconds?: number;
  asg_interval_seconds?: number;
  resync_interval_seconds?: number;
  canary_interval_seconds?: number;
  jitter?: number;
  backoff_seconds?: number;
  families?: Family[];
  netns?: string;
  backend?: 'auto' | Backend;
  listen?: string;
  lock_wait_seconds?: number;
  lock_file?: string;
  log_level?: Level;
  /** Run in place of vxlan-policy-agent, configured by its file (read at start and on SIGHUP). */
  vpa_config_file?: string;
  /** silk-cni's cni-wrapper-plugin.conflist, for what VPA's file lacks (DNS, host services, ingress tag). */
  cni_config_file?: string;
}

export interface PolicyServerSettings {
  readonly url: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly serverName?: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly pageLimit: number;
  readonly idsPerRequest: number;
}

export interface AgentSettings {
  readonly source:
    { readonly kind: 'files'; readonly directory: string } | ({ readonly kind: 'policy-server' } & PolicyServerSettings);
  readonly containersFile: string;
  readonly endpointsFile?: string;
  readonly asgcConfigFile?: string;
  readonly intervalMs: number;
  /** How often security groups are checked (VPA's asg_poll_interval); c2c policies every cycle. */
  readonly asgIntervalMs: number;
  readonly resyncIntervalMs: number;
  /** How often a cycle with nothing to write checks the canary; undefined: the backend's default. */
  readonly canaryIntervalMs?: number;
  readonly jitter: number;
  readonly backoffMs: number;
  readonly families: readonly Family[];
  readonly netns?: string;
  readonly backend: 'auto' | Backend;
  /** undefined: no HTTP endpoint. */
  readonly listen?: { readonly host: string; readonly port: number };
  readonly lockWaitSeconds: number;
  /** A file whose flock every restore and ipset change holds (shared with silk's CNI and garden). */
  readonly lockFile?: string;
  readonly logLevel: Level;
  /** Running in place of vxlan-policy-agent (--vpa-config). */
  readonly vpa?: VpaMode;
}

/** What running as vxlan-policy-agent adds: its endpoints, and configuration from its file and the CNI's. */
export interface VpaMode {
  readonly file: string;
  /** VPA's force server (the CNI's calls); undefined: not served. */
  readonly forceListen?: { readonly host: string; readonly port: number };
  /** VPA's debug server (/log-level, /iptables-c2c-logging), which monit probes. */
  readonly debugListen?: { readonly host: string; readonly port: number };
  /** false: the ASG endpoints answer 405, and the CNI writes its own static rules. */
  readonly enableAsgSyncing: boolean;
  /** asgc configuration keys from VPA's file and the CNI's, under asgc's own configuration file. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The file the configuration keys come from (VPA's, and the CNI's when read). */
  readonly configSource: string;
  /** A `source` field on every log line (VPA's log_prefix). */
  readonly logSource?: string;
}

const seconds = (min: number, max: number) => ({
  type: 'number',
  minimum: min,
  maximum: max,
  description: `must be a number of seconds from ${min} to ${max}`,
});
const path = { type: 'string', minLength: 1 };

const validate = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: {
    scenario_dir: path,
    policy_server: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'ca_file', 'cert_file', 'key_file'],
      properties: {
        url: { type: 'string', pattern: '^https://', description: 'must be an https:// URL' },
        ca_file: path,
        cert_file: path,
        key_file: path,
        server_name: { type: 'string', minLength: 1 },
        timeout_seconds: seconds(0.1, 600),
        max_response_mb: { type: 'number', minimum: 1, maximum: 4096 },
        page_limit: { type: 'integer', minimum: 1, maximum: 100000 },
        ids_per_request: { type: 'integer', minimum: 1, maximum: 10000 },
      },
    },
    containers_file: path,
    endpoints_file: path,
    asgc_config_file: path,
    interval_seconds: seconds(0.05, 86400),
    asg_interval_seconds: seconds(0.05, 86400),
    resync_interval_seconds: seconds(0, 604800),
    canary_interval_seconds: seconds(0, 604800),
    jitter: { type: 'number', minimum: 0, maximum: 0.5 },
    backoff_seconds: seconds(0.01, 3600),
    families: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [4, 6] } },
    netns: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'must be a network namespace name' },
    backend: { enum: ['auto', 'nft', 'legacy'] },
    listen: {
      type: 'string',
      pattern: '^$|^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+|localhost):[0-9]{1,5}$',
      description: 'must be host:port (an IPv6 host in brackets), or "" for none',
    },
    lock_wait_seconds: { type: 'integer', minimum: 1, maximum: 600 },
    lock_file: path,
    vpa_config_file: path,
    cni_config_file: path,
    log_level: { enum: ['debug', 'info', 'warn', 'error'] },
  },
});

function listenAddress(text: string): { host: string; port: number } | undefined {
  if (text === '') return undefined;
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

/** Settings from the file's document (if any) with the flags on top. */
export function agentSettings(
  document: unknown,
  flags: RawAgentSettings,
  file: string,
  vpa?: VpaMode,
): Result<AgentSettings, InputError[]> {
  const sink = new ErrorSink(file);
  if (document !== undefined && !checkSchema(validate, document, sink)) return fail(sink.errors);
  const fromFile = (document ?? {}) as RawAgentSettings;
  const raw: RawAgentSettings = { ...fromFile, ...flags };
  if (fromFile.policy_server || flags.policy_server) raw.policy_server = { ...fromFile.policy_server, ...flags.policy_server };
  if (flags.scenario_dir !== undefined && flags.policy_server === undefined) delete raw.policy_server;
  if (flags.policy_server !== undefined && flags.scenario_dir === undefined) delete raw.scenario_dir;
  const merged = new ErrorSink('command line and settings');
  if (!checkSchema(validate, raw, merged)) return fail(merged.errors);
  if ((raw.scenario_dir === undefined) === (raw.policy_server === undefined)) {
    return fail([
      {
        file,
        pointer: '',
        message: 'give exactly one source: scenario_dir (--scenario-dir) or policy_server (--policy-server-url ...)',
      },
    ]);
  }
  const directory = raw.scenario_dir;
  const containersFile = raw.containers_file ?? (directory === undefined ? undefined : `${directory}/containers.json`);
  if (containersFile === undefined)
    return fail([{ file, pointer: '/containers_file', message: 'is required with a policy server (--containers)' }]);
  const server = raw.policy_server;
  const endpointsFile = raw.endpoints_file ?? (directory === undefined ? undefined : `${directory}/endpoints.json`);
  const asgcConfigFile = raw.asgc_config_file ?? (directory === undefined ? undefined : `${directory}/config.json`);
  const listen = listenAddress(raw.listen ?? '127.0.0.1:9180');
  const intervalMs = (raw.interval_seconds ?? 60) * 1000;
  return ok({
    source:
      server === undefined
        ? { kind: 'files', directory: directory as string }
        : {
            kind: 'policy-server',
            url: server.url as string,
            caFile: server.ca_file as string,
            certFile: server.cert_file as string,
            keyFile: server.key_file as string,
            ...(server.server_name !== undefined && { serverName: server.server_name }),
            timeoutMs: (server.timeout_seconds ?? 10) * 1000,
            maxResponseBytes: (server.max_response_mb ?? 64) * 1024 * 1024,
            pageLimit: server.page_limit ?? 5000,
            idsPerRequest: server.ids_per_request ?? 100,
          },
    containersFile,
    ...(endpointsFile !== undefined && { endpointsFile }),
    ...(asgcConfigFile !== undefined && { asgcConfigFile }),
    intervalMs,
    asgIntervalMs: raw.asg_interval_seconds === undefined ? intervalMs : raw.asg_interval_seconds * 1000,
    resyncIntervalMs: (raw.resync_interval_seconds ?? 600) * 1000,
    ...(raw.canary_interval_seconds !== undefined && { canaryIntervalMs: raw.canary_interval_seconds * 1000 }),
    jitter: raw.jitter ?? 0.1,
    backoffMs: (raw.backoff_seconds ?? 1) * 1000,
    families: raw.families ?? [4, 6],
    ...(raw.netns !== undefined && { netns: raw.netns }),
    backend: raw.backend ?? 'auto',
    ...(listen && { listen }),
    lockWaitSeconds: raw.lock_wait_seconds ?? 10,
    ...(raw.lock_file !== undefined && { lockFile: raw.lock_file }),
    logLevel: raw.log_level ?? 'info',
    ...(vpa && { vpa }),
  });
}
