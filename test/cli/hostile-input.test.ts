// Input errors that hold under hostile input: deep nesting, control characters in keys and
// values, broken JSON, a BOM, bytes that are not UTF-8, truncated saved files. Then a seeded,
// bounded fuzz over a real scenario's documents (their structure, values and bytes): every run
// exits 0 or 1, every error is one stderr line in the documented form and nothing reaches
// stdout on error, and a sample of the accepted outputs loads with iptables-restore --test.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../../src/exec/namespace.js';
import { runProcess } from '../../src/exec/process.js';
import { MAX_JSON_DEPTH } from '../../src/ingest/json.js';
import { asgc } from '../support/cli.js';
import { kernelTestsEnabled, mustRun, withNamespace } from '../support/kernel.js';

const BASE = 'rules/c2c-ipv6-routed';
const kernel = kernelTestsEnabled('hostile input: restore --test of accepted outputs');
let work: string;
let documents: Record<string, string>;
let counter = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-hostile-'));
  documents = {};
  for (const name of await readdir(BASE)) documents[name] = await readFile(join(BASE, name), 'utf8');
});
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** A scenario directory holding `files` (bytes or text), the rest of the base scenario beside them. */
async function scenario(files: Record<string, string | Uint8Array>): Promise<string> {
  const directory = join(work, `s${++counter}`);
  await mkdir(directory);
  for (const [name, content] of Object.entries({ ...documents, ...files })) await writeFile(join(directory, name), content);
  return directory;
}

/** One line per error: `<file>: <message>` or `<file>: <pointer>: <message>`, no control character. */
function expectErrorLines(stderr: string, directory: string): string[] {
  expect(stderr.endsWith('\n')).toBe(true);
  const lines = stderr.slice(0, -1).split('\n');
  for (const line of lines) {
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(line.startsWith(`${directory}/`)).toBe(true);
    expect(line).toMatch(/^[^:]+\.json: (\/[^ ]*: )?\S.*$/);
  }
  return lines;
}

async function compileError(directory: string): Promise<string[]> {
  const result = await asgc('compile', directory);
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  return expectErrorLines(result.stderr, directory);
}

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hostile input, case by case', () => {
  it('nesting deeper than the bound is one clear error, in every document and in an ASG rules string', async () => {
    for (const name of Object.keys(documents)) {
      const [line] = await compileError(await scenario({ [name]: `{"x": ${nested(4500)}}` }));
      expect(line).toContain(`${name}: /x${'/0'.repeat(MAX_JSON_DEPTH - 1)}: is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    const groups = JSON.parse(documents['security_groups.json'] as string);
    groups.security_groups[0].rules = nested(4500);
    const lines = await compileError(await scenario({ 'security_groups.json': JSON.stringify(groups) }));
    expect(lines[0]).toMatch(
      /security_groups\.json: \/security_groups\/0\/rules: rules is a string that is nested deeper than 64/,
    );
    // Just within the bound is not an error of nesting.
    const shallow = await asgc('validate', await scenario({ 'config.json': `{"x": ${nested(MAX_JSON_DEPTH - 1)}}` }));
    expect(shallow.stderr).toContain('config.json: /x: unknown field');
  });

  it('control characters in keys and values are escaped: one error, one line', async () => {
    const containers = JSON.parse(documents['containers.json'] as string);
    const [first] = Object.keys(containers);
    containers['evil\nkey\u2028\u0000'] = containers[first as string];
    const lines = await compileError(await scenario({ 'containers.json': JSON.stringify(containers) }));
    expect(lines.join('\n')).toContain('/evil\\nkey\\u2028\\u0000');
  });

  it('a JSON syntax error gives line and column and never quotes the input', async () => {
    const text = '{\n  "next": 0,\n  "security_groups": [\n    {"guid": "a",, "name": "x\nSECRET"}\n  ]\n}';
    const [line] = await compileError(await scenario({ 'security_groups.json': text }));
    expect(line).toBe(
      `${work}/s${counter}/security_groups.json: is not valid JSON (line 4, column 18): expected a field name in double quotes`,
    );
    const truncated = await compileError(await scenario({ 'policies.json': '{"total_policies": 1, "policies": [' }));
    expect(truncated[0]).toMatch(
      /policies\.json: is not valid JSON \(line 1, column 36\): expected ',' or ']' \(the document ends early\)$/,
    );
    const empty = await compileError(await scenario({ 'config.json': ' \n' }));
    expect(empty[0]).toMatch(/config\.json: is empty, not a JSON document$/);
  });

  it('a UTF-8 BOM is accepted, and the output is as without it', async () => {
    const withBom = Object.fromEntries(Object.entries(documents).map(([name, text]) => [name, `\ufeff${text}`]));
    const result = await asgc('compile', await scenario(withBom));
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe((await asgc('compile', BASE)).stdout);
  });

  it('bytes that are not UTF-8 are an error naming the byte offset', async () => {
    const text = Buffer.from(documents['containers.json'] as string);
    const at = text.indexOf('"', 10) + 1;
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const bytes = Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]);
      const [line] = await compileError(await scenario({ 'containers.json': bytes }));
      expect(line).toMatch(new RegExp(`containers\\.json: is not UTF-8: invalid byte at offset ${at}$`));
    }
  });

  it('one truncated saved file gets the same exit code and one-line errors from every command', async () => {
    const golden = await readFile('golden/c2c-ipv6-routed/ip6tables.rules', 'utf8');
    const saved = join(work, 'truncated.rules');
    await writeFile(saved, golden.slice(0, Math.floor(golden.length / 2)));
    const diff = await asgc('diff', BASE, '--saved', saved, '--family', '6');
    const check = await asgc('check', '--saved', saved, '--container', 'fd00:255:0:1::2', '--to', '2001:db8::1', '--port', '443');
    for (const result of [diff, check]) {
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(new RegExp(`^${saved}:\\d+: `));
    }
    await writeFile(saved, Buffer.from([0x2a, 0x66, 0xff, 0x0a]));
    for (const argv of [
      ['diff', BASE, '--saved', saved, '--family', '6'],
      ['check', '--saved', saved, '--container', 'fd00:255:0:1::2', '--to', '2001:db8::1', '--port', '443'],
    ]) {
      const result = await asgc(...argv);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`${saved}: is not UTF-8: invalid byte at offset 2\n`);
    }
  });
});

/** Hostile strings: control characters, separators, pointer syntax, lone surrogates, long runs. */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(
    'a\nb',
    '\r\n',
    '\u0000',
    '~1/~0',
    '\u2028',
    '\ud800',
    '"',
    '\\',
    '0.0.0.0/0',
    '::/0',
    '-j ACCEPT',
    'x'.repeat(300),
  ),
);
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  // Spliced in as text after JSON.stringify, which would itself overflow on it.
  fc.integer({ min: 60, max: 5000 }).map((depth) => `${DEEP}${depth}${DEEP}`),
);
const DEEP = '\u0001deep';
const withDeepValues = (text: string) =>
  text.replace(/"\\u0001deep(\d+)\\u0001deep"/g, (_, depth: string) => nested(Number(depth)));

/** Replace the value at a random path (chosen by `choices`) with `value`, or rename its key. */
function mutate(document: unknown, choices: readonly number[], value: unknown, newKey: string | undefined): unknown {
  const root = structuredClone(document) as Record<string, unknown>;
  let parent: Record<string, unknown> | unknown[] = root;
  for (const choice of choices) {
    const keys = Array.isArray(parent) ? parent.map((_, index) => index) : Object.keys(parent);
    if (keys.length === 0) break;
    const key = keys[choice % keys.length] as string & number;
    const child: unknown = (parent as Record<string, unknown>)[key];
    if (child === null || typeof child !== 'object' || choice % 5 === 0) {
      if (newKey !== undefined && !Array.isArray(parent)) {
        delete parent[key];
        parent[newKey] = child;
      } else (parent as Record<string, unknown>)[key] = value;
      return root;
    }
    parent = child as Record<string, unknown> | unknown[];
  }
  return root;
}

const byteEdit = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
);

describe('hostile input, fuzzed (fast-check, seeded and bounded)', () => {
  const accepted: string[] = [];

  it('every run exits 0 or 1; errors are one line each in the documented form; stdout is empty on error', async () => {
    const names = Object.keys(documents);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...names),
        fc.oneof(
          fc.record({
            kind: fc.constant('structure' as const),
            choices: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
            value: hostileValue,
            newKey: fc.option(hostileString, { nil: undefined }),
          }),
          fc.record({ kind: fc.constant('bytes' as const), edit: byteEdit }),
        ),
        async (name, mutation) => {
          const original = documents[name] as string;
          let content: string | Uint8Array;
          if (mutation.kind === 'structure') {
            content = withDeepValues(
              JSON.stringify(mutate(JSON.parse(original), mutation.choices, mutation.value, mutation.newKey)),
            );
          } else {
            const bytes = Buffer.from(original);
            const at = mutation.edit.at % (bytes.length + 1);
            content =
              mutation.edit.kind === 'truncate'
                ? bytes.subarray(0, at)
                : Buffer.concat([bytes.subarray(0, at), Buffer.from(mutation.edit.bytes), bytes.subarray(at)]);
          }
          const directory = await scenario({ [name]: content });
          const result = await asgc('compile', directory);
          expect([0, 1]).toContain(result.code);
          if (result.code === 1) {
            expect(result.stdout).toBe('');
            expectErrorLines(result.stderr, directory);
          } else {
            expect(result.stdout).toMatch(/^# asgc: iptables ruleset/);
            for (const line of result.stderr.split('\n').filter(Boolean))
              expect(line).toMatch(/^asgc: warning: [^\u0000-\u001f]+$/);
            if (accepted.length < 6 && !accepted.includes(result.stdout)) accepted.push(result.stdout);
          }
          await rm(directory, { recursive: true });
        },
      ),
      { seed: 20261203, numRuns: 300 },
    );
    // The fuzz reached both outcomes.
    expect(accepted.length).toBeGreaterThan(1);
  }, 120_000);

  it.runIf(kernel)(
    'a sample of the accepted outputs loads with iptables-restore --test on the kernel',
    async () => {
      expect(accepted.length).toBeGreaterThan(1);
      for (const output of accepted) {
        const [, ipv4, ipv6, sets] = output.split(/^# asgc: .*$\n/m);
        await withNamespace(async (namespace) => {
          if (sets !== undefined) await mustRun(inNamespace(namespace, ['ipset', 'restore']), sets);
          for (const [tool, text] of [
            ['iptables-nft-restore', ipv4],
            ['ip6tables-nft-restore', ipv6],
          ] as const) {
            const loaded = await runProcess(inNamespace(namespace, [tool, '--test']), { input: text ?? '' });
            expect(loaded.stderr).toBe('');
            expect(loaded.code).toBe(0);
          }
        });
      }
    },
    60_000,
  );
});
