// Text from input (ASG names, descriptions, container handles) can never add a line or an
// argument to a ruleset: checked against iptables-restore's own tokenizer, and in the kernel.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCell } from '../../src/compile/compile.js';
import type { Match } from '../../src/ir/matches.js';
import type { Rule } from '../../src/ir/ruleset.js';
import { tokenizeRestoreLine } from '../../src/iptables/tokenize.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import { FAMILIES } from '../../src/model/address.js';
import { renderRule } from '../../src/render/save-text.js';
import { renderCell } from '../../src/scenario/pipeline.js';
import { cell, container, securityGroup } from '../support/cell.js';
import { kernelTestsEnabled, restore, save, withNamespace } from '../support/kernel.js';

const PLACEHOLDER = 'PLACEHOLDER';

const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom(
    '\n-A FORWARD -j ACCEPT',
    '" -j ACCEPT',
    'x" -A FORWARD -j ACCEPT "y',
    'trailing backslash \\',
    '\\" escaped quote',
    "it's",
    'COMMIT\n*filter',
    '',
    '   ',
    '\t-j DROP',
    '\u0000nul',
    'é✓🚀'.repeat(40),
  ),
  fc.tuple(fc.string(), fc.constantFrom('"', '\\', "'", '\n', '\r', ' ', '#'), fc.string()).map(([a, b, c]) => a + b + c),
);

function withPlaceholders(rule: Rule): Rule {
  const matches = rule.matches.map((match): Match => (match.kind === 'comment' ? { ...match, text: PLACEHOLDER } : match));
  const target = rule.target?.kind === 'LOG' ? { ...rule.target, prefix: PLACEHOLDER } : rule.target;
  return { ...rule, matches, ...(target && { target }) };
}

function hostileCell(name: string, description: string, handle: string) {
  const group = securityGroup(
    name,
    [
      { protocol: 'tcp', destination: '203.0.113.0/24,2001:db8::/32', ports: '443', description, log: true },
      { protocol: 'udp', destination: '198.51.100.1', ports: '53', description },
    ],
    { runningDefault: true },
  );
  return cell([group], [container(handle, ['10.255.0.2', '2001:db8:3000::2'])], { asgLogging: true });
}

describe('no input text can add a line or an argument (property, restore tokenizer)', () => {
  it('every string lands in exactly one argument of its own line', () => {
    fc.assert(
      fc.property(
        hostile,
        hostile,
        hostile.filter((h) => h.length > 0),
        (name, description, rawHandle) => {
          const handle = rawHandle.replace(/[\u0000-\u001f\u007f]/g, 'x'); // ingest refuses control characters in handles
          const compiled = compileCell(hostileCell(name, description, handle));
          expect(compiled.ok).toBe(true);
          if (!compiled.ok) return;
          for (const family of FAMILIES) {
            let ruleCount = 0;
            for (const chain of compiled.value[family].tables.flatMap((table) => table.chains)) {
              for (const rule of chain.rules) {
                if (rule.kind !== 'rule') continue;
                ruleCount++;
                const line = renderRule(chain.name, rule, family);
                expect(line).not.toMatch(/[\n\r]/);
                const tokens = tokenizeRestoreLine(line);
                const shape = tokenizeRestoreLine(renderRule(chain.name, withPlaceholders(rule), family));
                expect(tokens.length).toBe(shape.length);
                const strings = [
                  ...rule.matches.flatMap((m) => (m.kind === 'comment' ? [m.text] : [])),
                  ...(rule.target?.kind === 'LOG' ? [rule.target.prefix] : []),
                ];
                let next = 0;
                shape.forEach((token, index) => {
                  if (token === PLACEHOLDER) expect(tokens[index]).toBe(strings[next++]);
                  else expect(tokens[index]).toBe(token);
                });
                expect(next).toBe(strings.length);
              }
            }
            const text = renderCell(compiled.value)[family];
            expect(text.split('\n').filter((line) => line.startsWith('-A ')).length).toBe(ruleCount);
            expect(text.split('\n').filter((line) => line.startsWith('-A FORWARD')).length).toBe(1);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

const enabled = kernelTestsEnabled('injection');

describe.skipIf(!enabled)('hostile text through the kernel', () => {
  const samples: [string, string, string][] = [
    ['audit "prod" \\ egress', 'logged: "quotes", back\\slash, it\'s\n-A FORWARD -j ACCEPT\nCOMMIT', 'h" -j ACCEPT "'],
    ['x" -A FORWARD -j ACCEPT "y', '\\', 'it\'s a \\"trap\\"'],
    ['é✓🚀'.repeat(60), ' -j DROP #'.repeat(40), '8c5b0a4d-2c52-4c1f-6f7a-1a2b'],
  ];
  it.each(BACKENDS.flatMap((backend) => FAMILIES.map((family) => ({ backend, family }))))(
    '$backend, IPv$family',
    async ({ backend, family }) => {
      for (const [name, description, handle] of samples) {
        const compiled = compileCell(hostileCell(name, description, handle));
        if (!compiled.ok) throw new Error('compile failed');
        const text = renderCell(compiled.value)[family];
        await withNamespace(async (namespace) => {
          const loaded = await restore(namespace, backend, family, text);
          expect(loaded.code, loaded.stderr).toBe(0);
          const saved = await save(namespace, backend, family);
          expect(saved).toBe(text);
          expect(saved.split('\n').filter((line) => line.startsWith('-A FORWARD'))).toEqual(['-A FORWARD -j asgc-forward']);
        });
      }
    },
    60_000,
  );
});
