/**
 * The library's public surface (what `import … from 'defragd'` and
 * 'defragd/store' offer, types included), read by the TypeScript compiler
 * and compared with the list in test/api-surface.json: an export added or
 * removed by accident fails here. A deliberate change updates the list
 * (`UPDATE_API_SURFACE=1 npx vitest run test/api-surface.test.ts`) in the
 * same commit, where a reviewer sees it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIST = `${ROOT}test/api-surface.json`;
const ENTRY_POINTS = { defragd: 'src/index.ts', 'defragd/store': 'src/store/index.ts' } as const;

/** "name (value)" or "name (type)" for each export of each entry point, sorted. */
function surface(): Record<string, string[]> {
  const files = Object.values(ENTRY_POINTS).map((f) => `${ROOT}${f}`);
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out: Record<string, string[]> = {};
  for (const [name, file] of Object.entries(ENTRY_POINTS)) {
    const source = program.getSourceFile(`${ROOT}${file}`);
    const symbol = source && checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`no module symbol for ${file}`);
    out[name] = checker
      .getExportsOfModule(symbol)
      .map((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
        return `${s.getName()} (${target.flags & ts.SymbolFlags.Value ? 'value' : 'type'})`;
      })
      .sort();
  }
  return out;
}

describe('the public API', () => {
  it('exports exactly what test/api-surface.json lists', () => {
    const now = surface();
    if (process.env.UPDATE_API_SURFACE) writeFileSync(LIST, JSON.stringify(now, null, 2) + '\n');
    const listed = JSON.parse(readFileSync(LIST, 'utf8')) as Record<string, string[]>;
    expect(
      now,
      'the exports changed: if on purpose, UPDATE_API_SURFACE=1 npx vitest run test/api-surface.test.ts and commit the list',
    ).toEqual(listed);
  }, 60_000);
});
