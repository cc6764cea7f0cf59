/**
 * README's Library section, run as a user would paste it: the code block,
 * with `'defragd'` pointing at this tree and its endpoints at a real cluster,
 * in a process of its own. It must run to the end and say what it promises:
 * a plan line per member, the report's outcome, each member's last defrag.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { fragmentAndWait, MiB } from './helpers-defrag.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The first ```ts block under "## Library" in README.md. */
function librarySnippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library\n'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m?.[1]) throw new Error('no ts block under ## Library in README.md');
  return m[1];
}

describe("README's Library example", () => {
  const cluster = useCluster({ members: 3 });

  it('runs as written against a real cluster: plans, defragments every member, reads the records back, takes and releases the lock', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 4 * MiB, passes: 2, minFree: 2 * MiB, members: 3 });
    const snippet = librarySnippet();
    expect(snippet).toContain("from 'defragd'");
    const code = snippet
      .replace("from 'defragd'", `from ${JSON.stringify(join(ROOT, 'src/index.ts'))}`)
      .replace("{ endpoints: ['10.0.0.1:2379'], tls: { caFile: 'ca.pem' } }", JSON.stringify({ endpoints: c.endpoints }))
      // The rules as written want more garbage than a test makes: every member, as the plan's own default.
      .replaceAll("'dbSizeFree > 100*MiB'", "'dbSizeFree > 1*MiB'")
      .replace("'fragmentation > 0.45 && dbSize > 100*MiB'", "'dbSizeFree > 1*MiB'");
    const dir = mkdtempSync(join(tmpdir(), 'defragd-library-'));
    try {
      const file = join(dir, 'example.mts');
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      const show = `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
      expect(r.status, show).toBe(0);
      const lines = r.stdout.trim().split('\n');
      // A plan line per member, a member-finished line per member, the outcome, then each member's last defrag.
      expect(lines.filter((l) => / defragment /.test(l)).length, show).toBe(3);
      expect(lines.filter((l) => / defragmented$/.test(l)).length, show).toBe(3);
      expect(lines, show).toContainEqual(expect.stringMatching(/^success \d+$/));
      expect(lines.filter((l) => /^m[123] \d{4}-\d\d-\d\dT/.test(l)).length, show).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
