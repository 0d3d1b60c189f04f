// endpoints.json: the IPv6 addresses of each app's containers across the foundation, which
// IPv6 c2c (routed, no overlay) allows by source address: {"<app-guid>": ["2001:db8::a1", ...]}.
import { formatIPv6, parseIPv6 } from '../model/address.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { checkSchema, compileSchema } from './schema.js';

const validateDocument = compileSchema({
  type: 'object',
  propertyNames: { minLength: 1 },
  additionalProperties: { type: 'array', items: { type: 'string' } },
});

export function ingestEndpoints(document: unknown, file: string): { endpoints: Map<string, bigint[]>; errors: InputError[] } {
  const sink = new ErrorSink(file);
  const endpoints = new Map<string, bigint[]>();
  if (!checkSchema(validateDocument, document, sink)) return { endpoints, errors: sink.errors };
  for (const [app, addresses] of Object.entries(document as Record<string, string[]>)) {
    const seen = new Set<bigint>();
    addresses.forEach((text, index) => {
      const parsed = parseIPv6(text);
      if (!parsed.ok) return sink.add(pointer(app, index), `must be an IPv6 address: ${parsed.error}`);
      if (seen.has(parsed.value)) return sink.add(pointer(app, index), `${formatIPv6(parsed.value)} is listed twice`);
      seen.add(parsed.value);
    });
    endpoints.set(app, [...seen]);
  }
  return { endpoints, errors: sink.errors };
}
