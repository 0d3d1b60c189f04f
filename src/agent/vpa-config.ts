// vxlan-policy-agent.json, as the BOSH job renders it, read as asgc's settings; and silk-cni's
// cni-wrapper-plugin.conflist for what VPA's file lacks (DNS servers, host services, the ingress
// tag, the outbound limit's dry run), which the CNI reads from there too: one source on the
// cell, never a second copy to drift. Every VPA key maps to an asgc setting; keys that mean
// nothing for iptables are accepted and reported as ignored. Pure: the caller reads the files,
// checks that the certificates exist and looks up the underlay's interfaces.
import { ErrorSink, type InputError, pointer } from '../ingest/input-error.js';
import { checkSchema, compileSchema } from '../ingest/schema.js';
import { type Result, fail, ok } from '../model/result.js';
import type { RawAgentSettings, VpaMode } from './settings.js';

const text = { type: 'string' };
const path = { type: 'string', minLength: 1 };
const port = { type: 'integer', minimum: 1, maximum: 65535, description: 'must be a port from 1 to 65535' };
const positive = { type: 'integer', minimum: 1, description: 'must be a whole number from 1' };
const list = { type: 'array', items: { type: 'string' } };
const denyNetworks = {
  type: 'object',
  additionalProperties: false,
  properties: { always: list, running: list, staging: list },
};

const validateVpa = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['poll_interval', 'cni_datastore_path', 'policy_server_url', 'ca_cert_file', 'client_cert_file', 'client_key_file'],
  properties: {
    poll_interval: positive,
    asg_poll_interval: positive,
    enable_asg_syncing: { type: 'boolean' },
    cni_datastore_path: path,
    policy_server_url: { type: 'string', pattern: '^https://', description: 'must be an https:// URL' },
    ca_cert_file: path,
    client_cert_file: path,
    client_key_file: path,
    client_timeout_seconds: positive,
    iptables_lock_file: path,
    debug_server_host: text,
    debug_server_port: port,
    force_policy_poll_cycle_host: text,
    force_policy_poll_cycle_port: port,
    log_level: { enum: ['debug', 'info', 'warn', 'error', 'fatal'] },
    log_prefix: text,
    iptables_c2c_logging: { type: 'boolean' },
    iptables_asg_logging: { type: 'boolean' },
    iptables_accepted_udp_logs_per_sec: positive,
    iptables_denied_logs_per_sec: positive,
    enable_overlay_ingress_rules: { type: 'boolean' },
    disable_container_network_policy: { type: 'boolean' },
    overlay_network: text,
    underlay_ips: list,
    deny_networks: denyNetworks,
    outbound_connections: {
      type: 'object',
      additionalProperties: false,
      properties: {
        limit: { type: 'boolean' },
        logging: { type: 'boolean' },
        burst: positive,
        rate_per_sec: positive,
        dry_run: { type: 'boolean' },
      },
    },
    vni: { type: 'integer' },
    metron_address: text,
    loggregator: { type: 'object' },
  },
});

/** The CNI's conflist: only what asgc takes from it is checked; the rest is the CNI's business. */
const validateConflist = compileSchema({
  type: 'object',
  required: ['plugins'],
  properties: {
    plugins: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          dns_servers: list,
          host_tcp_services: list,
          host_udp_services: list,
          ingress_tag: text,
          outbound_connections: { type: 'object', properties: { dry_run: { type: 'boolean' } } },
        },
      },
    },
  },
});

interface RawVpa {
  poll_interval: number;
  asg_poll_interval?: number;
  enable_asg_syncing?: boolean;
  cni_datastore_path: string;
  policy_server_url: string;
  ca_cert_file: string;
  client_cert_file: string;
  client_key_file: string;
  client_timeout_seconds?: number;
  iptables_lock_file?: string;
  debug_server_host?: string;
  debug_server_port?: number;
  force_policy_poll_cycle_host?: string;
  force_policy_poll_cycle_port?: number;
  log_level?: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  log_prefix?: string;
  iptables_c2c_logging?: boolean;
  iptables_asg_logging?: boolean;
  iptables_accepted_udp_logs_per_sec?: number;
  iptables_denied_logs_per_sec?: number;
  enable_overlay_ingress_rules?: boolean;
  disable_container_network_policy?: boolean;
  overlay_network?: string;
  underlay_ips?: string[];
  deny_networks?: { always?: string[]; running?: string[]; staging?: string[] };
  outbound_connections?: { limit?: boolean; logging?: boolean; burst?: number; rate_per_sec?: number; dry_run?: boolean };
}

interface RawCniPlugin {
  dns_servers?: string[];
  host_tcp_services?: string[];
  host_udp_services?: string[];
  ingress_tag?: string;
  outbound_connections?: { dry_run?: boolean };
}

/** Keys with no meaning for iptables (the overlay's id, metrics and log transport). */
export const IGNORED_VPA_KEYS = ['vni', 'metron_address', 'loggregator'] as const;

/** What the files say, besides the documents themselves. */
export interface VpaFacts {
  /** The certificate files (of those the document names) that do not exist. */
  readonly missingFiles: ReadonlySet<string>;
  /** The interface each of the cell's addresses is on. */
  readonly interfaceOf: ReadonlyMap<string, string>;
}

export interface VpaSettings {
  /** Agent settings, under those of asgc's --config file and flags. */
  readonly raw: RawAgentSettings;
  readonly mode: VpaMode;
  /** What is accepted but has no effect, or could not be followed, said once at start. */
  readonly notes: readonly string[];
}

const DEFAULTS = {
  asgPollInterval: 60,
  debug: { host: '127.0.0.1', port: 8721 },
  force: { host: '127.0.0.1', port: 8722 },
  clientTimeoutSeconds: 5,
  burst: 1000,
  ratePerSec: 100,
} as const;

export function vpaSettings(
  document: unknown,
  file: string,
  facts: VpaFacts,
  conflist?: { readonly document: unknown; readonly file: string },
): Result<VpaSettings, InputError[]> {
  const sink = new ErrorSink(file);
  if (!checkSchema(validateVpa, document, sink)) return fail(sink.errors);
  const vpa = document as RawVpa;
  for (const key of ['ca_cert_file', 'client_cert_file', 'client_key_file'] as const)
    if (facts.missingFiles.has(vpa[key])) sink.add(pointer(key), `no such file: ${vpa[key]}`);
  let plugin: RawCniPlugin = {};
  if (conflist !== undefined) {
    const cniSink = new ErrorSink(conflist.file);
    if (!checkSchema(validateConflist, conflist.document, cniSink)) sink.errors.push(...cniSink.errors);
    else plugin = ((conflist.document as { plugins: RawCniPlugin[] }).plugins[0] ?? {}) as RawCniPlugin;
  }
  if (sink.errors.length > 0) return fail(sink.errors);

  const notes: string[] = [];
  for (const key of IGNORED_VPA_KEYS)
    if (key in (document as object)) notes.push(`${file}: /${key}: ignored (no meaning for iptables)`);
  const hostInterfaces: string[] = [];
  for (const [index, address] of (vpa.underlay_ips ?? []).entries()) {
    const name = facts.interfaceOf.get(address);
    if (name === undefined)
      notes.push(`${file}: /underlay_ips/${index}: no interface has ${address}: ASGs hold for traffic out of every interface`);
    else if (!hostInterfaces.includes(name)) hostInterfaces.push(name);
  }
  if (vpa.enable_overlay_ingress_rules)
    notes.push(
      `${file}: /enable_overlay_ingress_rules: the policy server's INGRESS_ROUTER tag is not fetched: the CNI's ingress_tag is accepted on every port`,
    );

  const outbound = vpa.outbound_connections;
  const dryRun = outbound?.dry_run ?? plugin.outbound_connections?.dry_run ?? false;
  const config: Record<string, unknown> = {
    ingress_tag_ports: 'all',
    ...(vpa.iptables_c2c_logging !== undefined && { c2c_logging: vpa.iptables_c2c_logging }),
    ...(vpa.iptables_asg_logging !== undefined && { asg_logging: vpa.iptables_asg_logging }),
    ...(vpa.iptables_accepted_udp_logs_per_sec !== undefined && {
      accepted_udp_logs_per_sec: vpa.iptables_accepted_udp_logs_per_sec,
    }),
    ...(vpa.iptables_denied_logs_per_sec !== undefined && { denied_logs_per_sec: vpa.iptables_denied_logs_per_sec }),
    ...(vpa.disable_container_network_policy !== undefined && {
      disable_container_network_policy: vpa.disable_container_network_policy,
    }),
    ...(vpa.overlay_network !== undefined && vpa.overlay_network !== '' && { overlay_network: vpa.overlay_network }),
    ...(hostInterfaces.length > 0 && { host_interfaces: hostInterfaces }),
    ...(vpa.deny_networks !== undefined && { deny_networks: vpa.deny_networks }),
    ...((outbound?.limit || dryRun) && {
      outbound_connections: {
        rate_per_sec: outbound?.rate_per_sec ?? DEFAULTS.ratePerSec,
        burst: outbound?.burst ?? DEFAULTS.burst,
        logging: outbound?.logging ?? false,
        dry_run: dryRun,
      },
    }),
    ...(plugin.dns_servers !== undefined && { dns_servers: plugin.dns_servers }),
    ...(plugin.host_tcp_services !== undefined && { host_tcp_services: plugin.host_tcp_services }),
    ...(plugin.host_udp_services !== undefined && { host_udp_services: plugin.host_udp_services }),
    ...(plugin.ingress_tag !== undefined && { ingress_tag: plugin.ingress_tag }),
  };
  const raw: RawAgentSettings = {
    policy_server: {
      url: vpa.policy_server_url,
      ca_file: vpa.ca_cert_file,
      cert_file: vpa.client_cert_file,
      key_file: vpa.client_key_file,
      timeout_seconds: vpa.client_timeout_seconds ?? DEFAULTS.clientTimeoutSeconds,
    },
    containers_file: vpa.cni_datastore_path,
    interval_seconds: vpa.poll_interval,
    asg_interval_seconds: vpa.asg_poll_interval ?? DEFAULTS.asgPollInterval,
    ...(vpa.iptables_lock_file !== undefined && { lock_file: vpa.iptables_lock_file }),
    ...(vpa.log_level !== undefined && { log_level: vpa.log_level === 'fatal' ? 'error' : vpa.log_level }),
  };
  const mode: VpaMode = {
    file,
    forceListen: {
      host: vpa.force_policy_poll_cycle_host ?? DEFAULTS.force.host,
      port: vpa.force_policy_poll_cycle_port ?? DEFAULTS.force.port,
    },
    debugListen: { host: vpa.debug_server_host ?? DEFAULTS.debug.host, port: vpa.debug_server_port ?? DEFAULTS.debug.port },
    enableAsgSyncing: vpa.enable_asg_syncing ?? true,
    config,
    configSource: conflist === undefined ? file : `${file} + ${conflist.file}`,
    ...(vpa.log_prefix !== undefined && { logSource: vpa.log_prefix }),
  };
  return ok({ raw, mode, notes });
}
