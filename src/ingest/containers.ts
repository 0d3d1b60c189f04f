// Container metadata in the silk datastore format, plus an optional "ipv6" beside "ip".
import { formatIPv6, parseIPv4, parseIPv6 } from '../model/address.js';
import type { Container } from '../model/cell.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { checkSchema, compileSchema } from './schema.js';

const printable = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  pattern: '^[^\\u0000-\\u001f\\u007f]+$',
  description: 'must be 1 to 256 printable characters',
};

const validateDocument = compileSchema({
  type: 'object',
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    required: ['handle'],
    properties: {
      handle: printable,
      ip: { type: 'string' },
      ipv6: { type: 'string' },
      metadata: {
        type: ['object', 'null'],
        properties: {
          policy_group_id: { type: 'string' },
          space_id: { type: 'string' },
          container_workload: { type: 'string' },
          ports: { type: 'string' },
        },
      },
    },
  },
});

interface RawContainer {
  handle: string;
  ip?: string;
  ipv6?: string;
  metadata?: { policy_group_id?: string; space_id?: string; container_workload?: string; ports?: string } | null;
}

function parseOwnPorts(text: string): number[] | undefined {
  if (text.trim() === '') return [];
  const ports = text.split(',').map((item) => (/^\s*\d{1,5}\s*$/.test(item) ? Number(item) : NaN));
  return ports.every((port) => port >= 1 && port <= 65535) ? ports : undefined;
}

export function ingestContainers(document: unknown, file: string): { containers: Container[]; errors: InputError[] } {
  const sink = new ErrorSink(file);
  if (!checkSchema(validateDocument, document, sink)) return { containers: [], errors: sink.errors };
  const containers: Container[] = [];
  const owners = new Map<string, string>();
  /** Record that `handle` owns `address`; false (and an error) if another container does. */
  const claim = (address: string, handle: string, at: string): boolean => {
    const owner = owners.get(address);
    if (owner === undefined) {
      owners.set(address, handle);
      return true;
    }
    sink.add(at, `address ${address} is already used by container ${owner}`);
    return false;
  };
  for (const [key, raw] of Object.entries(document as Record<string, RawContainer>)) {
    const at = pointer(key);
    let valid = true;
    if (raw.handle !== key) {
      sink.add(`${at}/handle`, `handle "${raw.handle}" differs from its key "${key}"`);
      valid = false;
    }
    const ip = raw.ip ?? '';
    const ipv6 = raw.ipv6 ?? '';
    if (ip === '' && ipv6 === '') {
      sink.add(at, 'has neither "ip" nor "ipv6": a container needs an address in at least one family');
      valid = false;
    }
    const v4 = ip === '' ? undefined : parseIPv4(ip);
    if (v4 && !v4.ok) {
      sink.add(`${at}/ip`, v4.error);
      valid = false;
    } else if (v4 && !claim(ip, key, `${at}/ip`)) valid = false;
    const v6 = ipv6 === '' ? undefined : parseIPv6(ipv6);
    if (v6 && !v6.ok) {
      sink.add(`${at}/ipv6`, v6.error);
      valid = false;
    } else if (v6 && !claim(formatIPv6(v6.value), key, `${at}/ipv6`)) valid = false;
    const metadata = raw.metadata ?? {};
    const ports = parseOwnPorts(metadata.ports ?? '');
    if (ports === undefined) {
      sink.add(`${at}/metadata/ports`, `must be a comma-separated list of ports from 1 to 65535, not "${metadata.ports}"`);
      valid = false;
    }
    if (!valid) continue;
    containers.push({
      handle: key,
      ...(v4?.ok && { ipv4: v4.value }),
      ...(v6?.ok && { ipv6: v6.value }),
      ...(metadata.policy_group_id && { appGuid: metadata.policy_group_id }),
      ...(metadata.space_id && { spaceGuid: metadata.space_id }),
      ...(metadata.container_workload && { workload: metadata.container_workload }),
      ports: ports ?? [],
    });
  }
  return { containers, errors: sink.errors };
}
