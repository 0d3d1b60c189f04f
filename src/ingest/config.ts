// asgc's own configuration; every key optional, so a scenario without it still compiles.
import type { AddressBlock } from '../model/address.js';
import { parseCidr } from '../model/address.js';
import { type AsgcConfig, DEFAULT_CONFIG, type DenyNetworks } from '../model/cell.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { checkSchema, compileSchema } from './schema.js';

/** Longest prefix that still leaves room for a readable id in a 28-character chain name. */
export const MAX_CHAIN_PREFIX_LENGTH = 12;

const networkList = { type: 'array', items: { type: 'string' } };

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
      properties: { always: networkList, running: networkList, staging: networkList },
    },
    asg_logging: { type: 'boolean' },
    denied_logs_per_sec: { type: 'integer', minimum: 1, maximum: 10000, description: 'must be an integer from 1 to 10000' },
    accepted_udp_logs_per_sec: { type: 'integer', minimum: 1, maximum: 10000, description: 'must be an integer from 1 to 10000' },
    host_interfaces: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^[A-Za-z0-9_.:@-]{1,14}\\+?$|^[A-Za-z0-9_.:@-]{15}$',
        description: 'must be an interface name of at most 15 characters (a trailing + is a wildcard)',
      },
    },
  },
});

interface RawConfig {
  chain_prefix?: string;
  deny_networks?: Partial<Record<keyof DenyNetworks, string[]>>;
  asg_logging?: boolean;
  denied_logs_per_sec?: number;
  accepted_udp_logs_per_sec?: number;
  host_interfaces?: string[];
}

export function ingestConfig(document: unknown, file: string): { config: AsgcConfig; errors: InputError[] } {
  const sink = new ErrorSink(file);
  if (!checkSchema(validateDocument, document, sink)) return { config: DEFAULT_CONFIG, errors: sink.errors };
  const raw = document as RawConfig;
  const denyNetworks = (list: keyof DenyNetworks): AddressBlock[] =>
    (raw.deny_networks?.[list] ?? []).flatMap((text, index) => {
      const parsed = parseCidr(text);
      if (parsed.ok) return [parsed.value];
      sink.add(pointer('deny_networks', list, index), `must be a CIDR or IP address: ${parsed.error}`);
      return [];
    });
  const config: AsgcConfig = {
    chainPrefix: raw.chain_prefix ?? DEFAULT_CONFIG.chainPrefix,
    denyNetworks: { always: denyNetworks('always'), running: denyNetworks('running'), staging: denyNetworks('staging') },
    asgLogging: raw.asg_logging ?? DEFAULT_CONFIG.asgLogging,
    deniedLogsPerSec: raw.denied_logs_per_sec ?? DEFAULT_CONFIG.deniedLogsPerSec,
    acceptedUdpLogsPerSec: raw.accepted_udp_logs_per_sec ?? DEFAULT_CONFIG.acceptedUdpLogsPerSec,
    hostInterfaces: raw.host_interfaces ?? DEFAULT_CONFIG.hostInterfaces,
  };
  return { config, errors: sink.errors };
}
