// asgc's own configuration; every key optional, so a scenario without it still compiles.
import { type AddressBlock, type CidrBlock, type ParsedAddress, parseAddress, parseCidr } from '../model/address.js';
import { type AsgcConfig, DEFAULT_CONFIG, type DenyNetworks, type HostService, type OutboundLimit } from '../model/cell.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { checkSchema, compileSchema } from './schema.js';

/** Longest prefix that still leaves room for a readable id in a 28-character chain name. */
export const MAX_CHAIN_PREFIX_LENGTH = 12;

const stringList = { type: 'array', items: { type: 'string' } };
const count = (max: number) => ({
  type: 'integer',
  minimum: 1,
  maximum: max,
  description: `must be an integer from 1 to ${max}`,
});

const interfaces = {
  type: 'array',
  items: {
    type: 'string',
    pattern: '^[A-Za-z0-9_.:@-]{1,14}\\+?$|^[A-Za-z0-9_.:@-]{15}$',
    description: 'must be an interface name of at most 15 characters (a trailing + is a wildcard)',
  },
};

const validateDocument = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: {
    chain_prefix: {
      type: 'string',
      pattern: `^[A-Za-z][A-Za-z0-9_-]{0,${MAX_CHAIN_PREFIX_LENGTH - 1}}$`,
      description: `must start with a letter and have at most ${MAX_CHAIN_PREFIX_LENGTH} letters, digits, '_' or '-'`,
    },
    deny_networks: {
      type: 'object',
      additionalProperties: false,
      properties: { always: stringList, running: stringList, staging: stringList },
    },
    asg_logging: { type: 'boolean' },
    c2c_logging: { type: 'boolean' },
    denied_logs_per_sec: count(10000),
    accepted_udp_logs_per_sec: count(10000),
    ipset_min_destinations: {
      type: 'integer',
      minimum: 2,
      maximum: 1_000_000,
      description: 'must be an integer from 2 to 1000000 (the fewest destinations an ASG rule moves into an ipset)',
    },
    host_interfaces: interfaces,
    container_interfaces: interfaces,
    container_prefixes: stringList,
    anti_spoofing: {
      type: 'object',
      additionalProperties: false,
      properties: { ipv4: { type: 'boolean' }, ipv6: { type: 'boolean' } },
    },
    overlay_network: { type: 'string' },
    dns_servers: stringList,
    host_tcp_services: stringList,
    host_udp_services: stringList,
    ingress_routers: stringList,
    ingress_tag: { type: 'string', pattern: '^[0-9A-Fa-f]{1,8}$', description: 'must be a tag of 1 to 8 hex digits' },
    ingress_tag_ports: { enum: ['own', 'all'] },
    disable_container_network_policy: { type: 'boolean' },
    outbound_connections: {
      type: 'object',
      additionalProperties: false,
      required: ['rate_per_sec', 'burst'],
      properties: {
        rate_per_sec: count(1_000_000),
        burst: count(1_000_000),
        expiry_seconds: count(86_400),
        logging: { type: 'boolean' },
        dry_run: { type: 'boolean' },
      },
    },
  },
});

interface RawConfig {
  chain_prefix?: string;
  deny_networks?: Partial<Record<keyof DenyNetworks, string[]>>;
  asg_logging?: boolean;
  c2c_logging?: boolean;
  denied_logs_per_sec?: number;
  accepted_udp_logs_per_sec?: number;
  ipset_min_destinations?: number;
  host_interfaces?: string[];
  container_interfaces?: string[];
  container_prefixes?: string[];
  anti_spoofing?: { ipv4?: boolean; ipv6?: boolean };
  overlay_network?: string;
  dns_servers?: string[];
  host_tcp_services?: string[];
  host_udp_services?: string[];
  ingress_routers?: string[];
  ingress_tag?: string;
  ingress_tag_ports?: 'own' | 'all';
  disable_container_network_policy?: boolean;
  outbound_connections?: { rate_per_sec: number; burst: number; expiry_seconds?: number; logging?: boolean; dry_run?: boolean };
}

/** `a.b.c.d:port` or `[v6]:port`. */
function parseHostService(text: string): HostService | string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return `must be host:port, with an IPv6 host in brackets, not "${text}"`;
  const address = parseAddress(match[1] ?? match[2] ?? '');
  if (!address.ok) return address.error;
  if (match[1] !== undefined && address.value.family !== 6) return `only IPv6 hosts go in brackets: "${text}"`;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  return { address: address.value, port };
}

export function ingestConfig(document: unknown, file: string): { config: AsgcConfig; errors: InputError[] } {
  const sink = new ErrorSink(file);
  if (!checkSchema(validateDocument, document, sink)) return { config: DEFAULT_CONFIG, errors: sink.errors };
  const raw = document as RawConfig;
  const list = <T>(
    key: keyof RawConfig,
    values: readonly string[] | undefined,
    read: (text: string) => T | string,
    ...path: (string | number)[]
  ): T[] =>
    (values ?? []).flatMap((text, index) => {
      const value = read(text);
      if (typeof value !== 'string') return [value];
      sink.add(pointer(key, ...path, index), value);
      return [];
    });
  const cidrOf = (text: string): CidrBlock | string => {
    const parsed = parseCidr(text);
    return parsed.ok ? parsed.value : `must be a CIDR or IP address: ${parsed.error}`;
  };
  const addressOf = (text: string): ParsedAddress | string => {
    const parsed = parseAddress(text);
    return parsed.ok ? parsed.value : `must be an IP address: ${parsed.error}`;
  };
  const denyNetworks = (key: keyof DenyNetworks): AddressBlock[] => list('deny_networks', raw.deny_networks?.[key], cidrOf, key);

  let overlayNetwork: CidrBlock | undefined;
  if (raw.overlay_network !== undefined) {
    const parsed = cidrOf(raw.overlay_network);
    if (typeof parsed === 'string') sink.add('/overlay_network', parsed);
    else if (parsed.family !== 4)
      sink.add('/overlay_network', 'must be an IPv4 CIDR (the IPv6 network is routed, without an overlay)');
    else overlayNetwork = parsed;
  }
  const ingressTag = raw.ingress_tag === undefined ? undefined : parseInt(raw.ingress_tag, 16);
  if (ingressTag === 0) sink.add('/ingress_tag', 'tag 0 means "no mark" and cannot identify the ingress router');
  const outbound = raw.outbound_connections;
  const outboundConnections: OutboundLimit | undefined =
    outbound === undefined
      ? undefined
      : {
          perSecond: outbound.rate_per_sec,
          burst: outbound.burst,
          // CF's: the time the bucket takes to fill up again.
          expirySeconds: outbound.expiry_seconds ?? Math.ceil(outbound.burst / outbound.rate_per_sec),
          logging: outbound.logging ?? raw.asg_logging ?? DEFAULT_CONFIG.asgLogging,
          dryRun: outbound.dry_run ?? false,
        };

  const config: AsgcConfig = {
    chainPrefix: raw.chain_prefix ?? DEFAULT_CONFIG.chainPrefix,
    denyNetworks: { always: denyNetworks('always'), running: denyNetworks('running'), staging: denyNetworks('staging') },
    asgLogging: raw.asg_logging ?? DEFAULT_CONFIG.asgLogging,
    c2cLogging: raw.c2c_logging ?? DEFAULT_CONFIG.c2cLogging,
    deniedLogsPerSec: raw.denied_logs_per_sec ?? DEFAULT_CONFIG.deniedLogsPerSec,
    acceptedUdpLogsPerSec: raw.accepted_udp_logs_per_sec ?? DEFAULT_CONFIG.acceptedUdpLogsPerSec,
    hostInterfaces: raw.host_interfaces ?? DEFAULT_CONFIG.hostInterfaces,
    ...(overlayNetwork && { overlayNetwork }),
    dnsServers: list('dns_servers', raw.dns_servers, addressOf),
    hostTcpServices: list('host_tcp_services', raw.host_tcp_services, parseHostService),
    hostUdpServices: list('host_udp_services', raw.host_udp_services, parseHostService),
    ingressRouters: list('ingress_routers', raw.ingress_routers, cidrOf),
    ...(ingressTag !== undefined && ingressTag !== 0 && { ingressTag }),
    ingressTagPorts: raw.ingress_tag_ports ?? DEFAULT_CONFIG.ingressTagPorts,
    disableContainerNetworkPolicy: raw.disable_container_network_policy ?? DEFAULT_CONFIG.disableContainerNetworkPolicy,
    ...(outboundConnections && { outboundConnections }),
    ...(raw.ipset_min_destinations !== undefined && { ipsetMinDestinations: raw.ipset_min_destinations }),
    containerInterfaces: raw.container_interfaces ?? DEFAULT_CONFIG.containerInterfaces,
    containerPrefixes: list('container_prefixes', raw.container_prefixes, cidrOf),
    antiSpoofing: {
      4: raw.anti_spoofing?.ipv4 ?? DEFAULT_CONFIG.antiSpoofing[4],
      6: raw.anti_spoofing?.ipv6 ?? DEFAULT_CONFIG.antiSpoofing[6],
    },
  };
  if ((config.antiSpoofing[4] || config.antiSpoofing[6]) && config.containerInterfaces.length === 0)
    sink.add('/anti_spoofing', 'needs container_interfaces: what comes from a container is known by the interface it arrives on');
  return { config, errors: sink.errors };
}
