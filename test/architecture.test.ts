// The folders of src/ import each other in one direction only, in the order of DESIGN.md's
// module table: a folder imports only folders listed before it, so no two folders ever import
// each other, directly or through others. Read from the sources themselves.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Lowest first. Files directly in src/ (version.ts) are below all of them. */
const LAYERS = [
  'model',
  'memo',
  'ingest',
  'ir',
  'extensions',
  'compile',
  'render',
  'check',
  'exec',
  'iptables',
  'ipset',
  'diff',
  'reconcile',
  'scenario',
  'agent',
  'cli',
] as const;

async function sources(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? sources(join(directory, entry.name)) : [join(directory, entry.name)])),
  );
  return nested.flat().filter((file) => file.endsWith('.ts'));
}

/** Folder -> the folders its files import (relative imports only). */
async function folderImports(): Promise<Map<string, Set<string>>> {
  const edges = new Map<string, Set<string>>();
  for (const file of await sources('src')) {
    const [, folder] = file.split('/');
    if (folder === undefined || folder.endsWith('.ts')) continue;
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(/from '(\.\.?\/[^']+)'/g)) {
      const target = join(folder, match[1] as string).split('/')[0] as string;
      if (target === folder || target.endsWith('.js')) continue;
      edges.set(folder, (edges.get(folder) ?? new Set()).add(target));
    }
  }
  return edges;
}

describe('the folders of src/', () => {
  it('are all in the layer order', async () => {
    const folders = (await readdir('src', { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect([...folders].sort()).toEqual([...LAYERS].sort());
  });

  it('import only folders below them, so none imports one that imports it back', async () => {
    const edges = await folderImports();
    const upward = [...edges].flatMap(([from, targets]) =>
      [...targets].filter((to) => LAYERS.indexOf(to as never) >= LAYERS.indexOf(from as never)).map((to) => `${from} -> ${to}`),
    );
    expect(upward).toEqual([]);
  });

  it('have no import cycle (found by a walk of the import graph)', async () => {
    const edges = await folderImports();
    const cycles: string[] = [];
    const walk = (folder: string, path: string[]) => {
      if (path.includes(folder)) return void cycles.push([...path.slice(path.indexOf(folder)), folder].join(' -> '));
      for (const next of edges.get(folder) ?? []) walk(next, [...path, folder]);
    };
    for (const folder of edges.keys()) walk(folder, []);
    expect(cycles).toEqual([]);
  });
});
