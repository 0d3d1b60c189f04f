// Container metadata in the silk datastore format, plus an optional "ipv6" beside "ip".
import { formatIPv6, parseIPv4, parseIPv6 } from '../model/address.js';
import type { AppLogConfig, Container } from '../model/cell.js';
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
  metadata?: {
    policy_group_id?: string;
    space_id?: string;
    container_workload?: string;
    ports?: string;
    log_config?: unknown;
  } | null;
}

/** Diego's log_config (a JSON string in the metadata): the app's log stream, or why it is not one. */
function parseLogConfig(value: unknown): AppLogConfig | string {
  if (typeof value !== 'string') return 'must be a JSON string';
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    return `is not JSON: ${(error as Error).message}`;
  }
  const { guid, index, source_name: sourceName, tags } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof guid !== 'string' || guid === '') return 'has no "guid"';
  const stringTags = Object.entries(typeof tags === 'object' && tags !== null ? tags : {}).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string',
  );
  return {
    guid,
    index: typeof index === 'number' ? index : 0,
    sourceName: typeof sourceName === 'string' ? sourceName : '',
    tags: Object.fromEntries(stringTags),
  };
}

function parseOwnPorts(text: string): number[] | undefined {
  if (text.trim() === '') return [];
  const ports = text.split(',').map((item) => (/^\s*\d{1,5}\s*$/.test(item) ? Number(item) : NaN));
  return ports.every((port) => port >= 1 && port <= 65535) ? ports : undefined;
}

export interface IngestedContainers {
  readonly containers: Container[];
  /** What makes the document unusable. */
  readonly errors: InputError[];
  /**
   * What is reported but does not stop the cell: two entries with one address (a stale entry a
   * failed delete left; VPA enforces both, and so does asgc), a log_config that cannot be read.
   */
  readonly warnings: InputError[];
}

export function ingestContainers(document: unknown, file: string): IngestedContainers {
  const sink = new ErrorSink(file);
  const warnings = new ErrorSink(file);
  if (!checkSchema(validateDocument, document, sink)) return { containers: [], errors: sink.errors, warnings: [] };
  const containers: Container[] = [];
  const owners = new Map<string, string>();
  /** Record that `handle` has `address`, and report another container that has it too. */
  const claim = (address: string, handle: string, at: string): void => {
    const owner = owners.get(address);
    if (owner === undefined) owners.set(address, handle);
    else
      warnings.add(
        at,
        `address ${address} is also container ${owner}'s (a stale entry?): both are enforced, the first by handle decides its traffic`,
      );
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
    } else if (v4) claim(ip, key, `${at}/ip`);
    const v6 = ipv6 === '' ? undefined : parseIPv6(ipv6);
    if (v6 && !v6.ok) {
      sink.add(`${at}/ipv6`, v6.error);
      valid = false;
    } else if (v6) claim(formatIPv6(v6.value), key, `${at}/ipv6`);
    const metadata = raw.metadata ?? {};
    const ports = parseOwnPorts(metadata.ports ?? '');
    if (ports === undefined) {
      sink.add(`${at}/metadata/ports`, `must be a comma-separated list of ports from 1 to 65535, not "${metadata.ports}"`);
      valid = false;
    }
    if (!valid) continue;
    const logConfig = metadata.log_config === undefined ? undefined : parseLogConfig(metadata.log_config);
    if (typeof logConfig === 'string')
      warnings.add(`${at}/metadata/log_config`, `${logConfig}: the app is not told of rule changes`);
    containers.push({
      handle: key,
      ...(v4?.ok && { ipv4: v4.value }),
      ...(v6?.ok && { ipv6: v6.value }),
      ...(metadata.policy_group_id && { appGuid: metadata.policy_group_id }),
      ...(metadata.space_id && { spaceGuid: metadata.space_id }),
      ...(metadata.container_workload && { workload: metadata.container_workload }),
      ports: ports ?? [],
      ...(logConfig !== undefined && typeof logConfig !== 'string' && { logConfig }),
    });
  }
  return { containers, errors: sink.errors, warnings: warnings.errors };
}
