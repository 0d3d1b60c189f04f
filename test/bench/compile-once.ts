// One compile of a scenario directory in a fresh process (as `asgc compile` runs), reporting
// stage times and peak RSS as JSON; optionally writes the IPv4 ruleset for the kernel baseline.
import { writeFile } from 'node:fs/promises';
import { readScenario } from '../../src/scenario/files.js';
import { ingestScenario } from '../../src/ingest/cell.js';
import { compileCell } from '../../src/compile/compile.js';
import { renderRuleset } from '../../src/render/save-text.js';
import { printChains } from '../../src/render/text-memo.js';

const [directory, ipv4Out, mode] = process.argv.slice(2);
if (directory === undefined) throw new Error('usage: compile-once <scenario-dir> [ipv4-output-file|-] [--no-optimize]');
const optimise = mode !== '--no-optimize';

const now = () => performance.now();
const t0 = now();
const texts = await readScenario({ directory, required: ['containers'] });
if (!texts.ok) throw new Error(JSON.stringify(texts.error));
const t1 = now();
const cell = ingestScenario(texts.value);
if (!cell.ok) throw new Error(JSON.stringify(cell.error.slice(0, 5)));
const t2 = now();
const compiled = compileCell(cell.value.cell, { optimise, memo: printChains });
if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
const t3 = now();
const v4 = renderRuleset(compiled.value[4]);
const v6 = renderRuleset(compiled.value[6]);
const t4 = now();
// Baseline in the same process: only parsing the same input documents, nothing else.
const tb = now();
for (const source of Object.values(texts.value)) JSON.parse(source.text);
const jsonParseMs = now() - tb;
if (ipv4Out !== undefined && ipv4Out !== '-') await writeFile(ipv4Out, v4);
const countRules = (text: string) => text.split('\n-A ').length - 1;
process.stdout.write(
  JSON.stringify({
    readMs: t1 - t0,
    ingestMs: t2 - t1,
    compileMs: t3 - t2,
    renderMs: t4 - t3,
    totalMs: t4 - t0,
    jsonParseMs,
    rules: countRules(v4) + countRules(v6),
    bytes: Buffer.byteLength(v4) + Buffer.byteLength(v6),
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  }),
);
