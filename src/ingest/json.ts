// JSON text -> value. Errors name the file, a line and column, and never quote the input
// (V8's messages do, across lines); nesting is bounded before anything recurses over it.
import { type ParseErrorCode, visit } from 'jsonc-parser';
import { type Result, fail, ok } from '../model/result.js';
import { type InputError, pointer } from './input-error.js';

/** Far deeper than any policy-server or cell document; shallow enough for every recursive stage. */
export const MAX_JSON_DEPTH = 64;

// jsonc-parser's ParseErrorCode, in words.
const REASONS: Record<ParseErrorCode, string> = {
  1: 'a character that cannot start a JSON value',
  2: 'a malformed number',
  3: 'expected a field name in double quotes',
  4: 'expected a value',
  5: "expected ':' after the field name",
  6: "expected ',' or the end of the object or array",
  7: "expected ',' or '}'",
  8: "expected ',' or ']'",
  9: 'more text after the document',
  10: 'a comment, which JSON does not allow',
  11: 'an unterminated comment',
  12: 'an unterminated string',
  13: 'a number cut short',
  14: 'a malformed \\u escape',
  15: 'an invalid escape in a string',
  16: 'a control character inside a string (write it as an escape)',
};

function lineAndColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) {
    line++;
    lineStart = index + 1;
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

function syntaxError(text: string, v8Message: string): string {
  if (text.trim() === '') return 'is empty, not a JSON document';
  let first: { code: ParseErrorCode; offset: number } | undefined;
  visit(
    text,
    {
      onError: (code, offset) => {
        first ??= { code, offset };
      },
    },
    { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false },
  );
  if (first !== undefined) {
    const ended = first.offset >= text.length ? ' (the document ends early)' : '';
    return `is not valid JSON (${lineAndColumn(text, first.offset)}): ${REASONS[first.code]}${ended}`;
  }
  // The two parsers disagree: keep V8's offset when it gives one, never its quote of the input.
  const position = /position (\d+)/.exec(v8Message);
  return position ? `is not valid JSON (${lineAndColumn(text, Number(position[1]))})` : 'is not valid JSON';
}

/**
 * Whether some array or object lies deeper than MAX_JSON_DEPTH: a flat walk, no recursion, and no
 * allocation per value (a 7 MB document of 100,000 rules costs a few ms over JSON.parse).
 */
function nestsTooDeep(value: unknown): boolean {
  const nodes: object[] = [];
  const depths: number[] = [];
  const visit = (child: unknown, depth: number) => {
    if (typeof child !== 'object' || child === null) return;
    nodes.push(child);
    depths.push(depth);
  };
  visit(value, 1);
  while (nodes.length > 0) {
    const node = nodes.pop() as object;
    const depth = depths.pop() as number;
    if (depth > MAX_JSON_DEPTH) return true;
    if (Array.isArray(node)) for (const child of node) visit(child, depth + 1);
    else for (const key in node) visit((node as Record<string, unknown>)[key], depth + 1);
  }
  return false;
}

/** The path to the first value deeper than MAX_JSON_DEPTH (recursion bounded by that depth). */
function pathTooDeep(node: unknown, depth = 1): (string | number)[] | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  if (depth > MAX_JSON_DEPTH) return [];
  for (const [key, child] of Array.isArray(node) ? node.entries() : Object.entries(node)) {
    const below = pathTooDeep(child, depth + 1);
    if (below !== undefined) return [key, ...below];
  }
  return undefined;
}

export function parseJson(text: string, file: string): Result<unknown, InputError> {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch (error) {
    return fail({ file, pointer: '', message: syntaxError(body, (error as Error).message) });
  }
  if (nestsTooDeep(value)) {
    const path = pathTooDeep(value) ?? [];
    return fail({ file, pointer: pointer(...path), message: `is nested deeper than ${MAX_JSON_DEPTH} levels` });
  }
  return ok(value);
}
