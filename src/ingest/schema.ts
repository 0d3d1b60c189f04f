// JSON Schema checks (ajv), with ajv's errors turned into messages that say what is wrong
// and where, in the document's own terms.
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import { ErrorSink, escapePointerToken } from './input-error.js';

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });

/**
 * A validator of `schema`, compiled when first used: compiling takes ajv milliseconds per
 * schema, and most commands use few of asgc's schemas.
 */
export function compileSchema(schema: AnySchema): ValidateFunction {
  let compiled: ValidateFunction | undefined;
  const validate = ((data: unknown) => {
    compiled ??= ajv.compile(schema);
    const valid = compiled(data);
    validate.errors = compiled.errors ?? null;
    return valid;
  }) as ValidateFunction;
  return validate;
}

function article(type: string): string {
  return type === 'integer' || type === 'object' || type === 'array' ? `an ${type}` : type === 'null' ? 'null' : `a ${type}`;
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describe(error: ErrorObject): { pointer: string; message: string } {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return {
        pointer: `${error.instancePath}/${escapePointerToken(String(params.additionalProperty))}`,
        message: 'unknown field',
      };
    case 'required':
      return { pointer: error.instancePath, message: `missing required field "${String(params.missingProperty)}"` };
    case 'type': {
      const types = String(params.type).split(',');
      return {
        pointer: error.instancePath,
        message: `must be ${types.map(article).join(' or ')}, not ${describeValue(error.data)}`,
      };
    }
    case 'enum':
      return {
        pointer: error.instancePath,
        message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, not ${describeValue(error.data)}`,
      };
    default: {
      const schemaNote = (error.parentSchema as { description?: string } | undefined)?.description;
      return {
        pointer: error.instancePath,
        message: schemaNote
          ? `${schemaNote}, not ${describeValue(error.data)}`
          : `${error.message ?? 'is invalid'} (${describeValue(error.data)})`,
      };
    }
  }
}

/** Validate `data` (found at `base` in the document) and report each problem once. Returns true if valid. */
export function checkSchema(validate: ValidateFunction, data: unknown, sink: ErrorSink, base = ''): boolean {
  if (validate(data)) return true;
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    const { pointer, message } = describe(error);
    const key = `${pointer}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    sink.add(base + pointer, message);
  }
  return false;
}
