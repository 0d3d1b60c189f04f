// GET /networking/v1/internal/policies: c2c policies with their apps' tags.
import type { C2cPolicy } from '../model/cell.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { checkSchema, compileSchema } from './schema.js';

const tag = { type: 'string', pattern: '^[0-9A-Fa-f]{1,8}$', description: 'must be a tag of 1 to 8 hex digits' };
const port = { type: 'integer', minimum: 1, maximum: 65535, description: 'must be a port from 1 to 65535' };

const validateDocument = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['policies'],
  properties: {
    total_policies: { type: 'integer', minimum: 0 },
    policies: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['source', 'destination'],
        properties: {
          source: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'tag'],
            properties: { id: { type: 'string', minLength: 1 }, tag, type: { type: 'string' } },
          },
          destination: {
            type: 'object',
            additionalProperties: false,
            // VPA ignores the destination's tag: a policy without one is fine.
            required: ['id', 'protocol', 'ports'],
            properties: {
              id: { type: 'string', minLength: 1 },
              tag,
              type: { type: 'string' },
              protocol: { enum: ['tcp', 'udp'] },
              ports: {
                type: 'object',
                additionalProperties: false,
                required: ['start', 'end'],
                properties: { start: port, end: port },
              },
            },
          },
        },
      },
    },
  },
});

interface RawPolicy {
  source: { id: string; tag: string };
  destination: { id: string; tag?: string; protocol: 'tcp' | 'udp'; ports: { start: number; end: number } };
}

export function ingestPolicies(document: unknown, file: string): { policies: C2cPolicy[]; errors: InputError[] } {
  const sink = new ErrorSink(file);
  if (!checkSchema(validateDocument, document, sink)) return { policies: [], errors: sink.errors };
  const { policies: raw, total_policies: total } = document as { policies: RawPolicy[]; total_policies?: number };
  if (total !== undefined && total !== raw.length) {
    sink.add('/total_policies', `says ${total} policies but the document lists ${raw.length}: it is incomplete or inconsistent`);
  }
  const policies: C2cPolicy[] = [];
  raw.forEach((policy, index) => {
    const { start, end } = policy.destination.ports;
    for (const side of ['source', 'destination'] as const) {
      const tag = policy[side].tag;
      if (tag !== undefined && parseInt(tag, 16) === 0)
        sink.add(pointer('policies', index, side, 'tag'), 'tag 0 means "no mark" and is never an app\'s tag');
    }
    if (start > end) {
      sink.add(
        pointer('policies', index, 'destination', 'ports'),
        `invalid port range ${start}-${end}, start must be less than or equal to end`,
      );
      return;
    }
    const destinationTag = policy.destination.tag === undefined ? undefined : parseInt(policy.destination.tag, 16);
    if (parseInt(policy.source.tag, 16) === 0 || destinationTag === 0) return;
    policies.push({
      source: { appGuid: policy.source.id, tag: parseInt(policy.source.tag, 16) },
      destination: {
        appGuid: policy.destination.id,
        ...(destinationTag !== undefined && { tag: destinationTag }),
        protocol: policy.destination.protocol,
        ports: { start, end },
      },
    });
  });
  return { policies, errors: sink.errors };
}
