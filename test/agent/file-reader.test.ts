import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileReader } from '../../src/agent/file-reader.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'asgc-reader-'));
});
afterEach(() => rm(directory, { recursive: true, force: true }));

describe('re-reading a file every cycle', () => {
  it('hands back the very same string while the bytes are the same, and the new text when they change', async () => {
    const reader = new FileReader();
    const path = join(directory, 'doc.json');
    await writeFile(path, '{"a":"ü"}');
    const first = await reader.read(path);
    await writeFile(path, '{"a":"ü"}');
    const second = await reader.read(path);
    expect(second).toBe(first);
    await writeFile(path, '{"a":"ö"}');
    expect(await reader.read(path)).toBe('{"a":"ö"}');
    await writeFile(path, 'x'.repeat(100_000));
    expect(await reader.read(path)).toBe('x'.repeat(100_000));
    await writeFile(path, '{}');
    expect(await reader.read(path)).toBe('{}');
  });

  it('never takes a file rewritten within the same clock tick (same size, same times) for unchanged', async () => {
    const reader = new FileReader();
    const path = join(directory, 'doc.json');
    for (let round = 0; round < 20; round++) {
      await writeFile(path, `{"n":${round % 10}}`);
      expect(await reader.read(path)).toBe(`{"n":${round % 10}}`);
    }
  });

  it('trusts the status of a file that was already old when read, and hands back the same string', async () => {
    let clock = Date.now();
    const reader = new FileReader(() => clock);
    const path = join(directory, 'doc.json');
    await writeFile(path, '{"old":true}');
    clock += 10_000;
    const first = await reader.read(path);
    expect(await reader.read(path)).toBe(first);
    await writeFile(path, '{"new":true}');
    expect(await reader.read(path)).toBe('{"new":true}');
  });

  it('says when a file does not exist, and keeps files apart', async () => {
    const reader = new FileReader();
    expect(await reader.read(join(directory, 'absent.json'))).toBeUndefined();
    await writeFile(join(directory, 'a'), 'A');
    await writeFile(join(directory, 'b'), 'B');
    expect([await reader.read(join(directory, 'a')), await reader.read(join(directory, 'b'))]).toEqual(['A', 'B']);
    await expect(reader.read(directory)).rejects.toThrow();
  });
});
