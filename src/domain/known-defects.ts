/**
 * etcd releases with a known defect in defragmentation, in one table: every
 * command that observes a cluster warns about a member that runs one, and a
 * defect marked `refuse` stops `defrag` and the daemon unless the operator
 * overrides it (`--allow-known-defects`). Each row names etcd's issue and the
 * first fixed patch release of each affected line, from etcd's changelogs
 * (CHANGELOG/CHANGELOG-3.x.md). Pure data and a version comparison.
 */

/** One known defect and the releases it affects. */
export interface KnownDefect {
  /** etcd's issue, e.g. "etcd#14685". */
  issue: string;
  /** What can go wrong, as a phrase for people ("a defrag interrupted by a crash can ..."). */
  summary: string;
  /** Affected releases, one range per minor line: `from` (inclusive) up to `fixedIn` (exclusive). */
  affected: readonly { from: string; fixedIn: string }[];
  /** `refuse`: no defrag on such a member unless overridden; `warn`: a warning only. */
  severity: 'refuse' | 'warn';
}

/**
 * The table. Ranges start at the line's first release unless the defect came later.
 * 3.4 has reached its end of life (3.4.45 was its last release).
 */
export const KNOWN_DEFECTS: readonly KnownDefect[] = [
  {
    // Found by etcd PR #14685's test, fixed by #14733 (3.5.6): "Fix inconsistent revision and index when etcd crashes during processing defragmentation".
    issue: 'etcd#14685',
    summary: 'a defrag interrupted by a crash or kill can leave the member with inconsistent revisions, unable to start',
    affected: [{ from: '3.5.0', fixedIn: '3.5.6' }],
    severity: 'refuse',
  },
  {
    // Fixed in 3.4.4 by #11622: a crashed defrag's leftover db.tmp was reused by the next one.
    issue: 'etcd#11613',
    summary: "a crashed defrag's leftover temp file is reused by the next defrag",
    affected: [{ from: '3.4.0', fixedIn: '3.4.4' }],
    severity: 'warn',
  },
  {
    // Fixed by #13713 (3.4.19) and #13701 (3.5.3); 3.6 never had it.
    issue: 'etcd#13678',
    summary: "a defrag resets bbolt's options (the freelist type, the initial mmap size) to their defaults",
    affected: [
      { from: '3.4.0', fixedIn: '3.4.19' },
      { from: '3.5.0', fixedIn: '3.5.3' },
    ],
    severity: 'warn',
  },
  {
    // Fixed by #18843 (3.4.35) and #18842 (3.5.17); in 3.6.0 from the start.
    issue: 'etcd#18810',
    summary: 'a defrag that fails (for instance on a full disk) panics the member',
    affected: [
      { from: '3.4.0', fixedIn: '3.4.35' },
      { from: '3.5.0', fixedIn: '3.5.17' },
    ],
    severity: 'warn',
  },
  {
    // Fixed by #18855 (3.4.35) and #18854 (3.5.17).
    issue: 'etcd#18841',
    summary: 'a defrag that fails leaves its temp file open, holding the disk space it used',
    affected: [
      { from: '3.4.4', fixedIn: '3.4.35' },
      { from: '3.5.0', fixedIn: '3.5.17' },
    ],
    severity: 'warn',
  },
  {
    // Fixed by #20659 (3.4.38), #20653 (3.5.23), #20650 (3.6.5); 3.7.0 has the fix (#20553).
    issue: 'etcd#20271',
    summary: 'a raft snapshot applied while a defrag runs can corrupt the member',
    affected: [
      { from: '3.4.0', fixedIn: '3.4.38' },
      { from: '3.5.0', fixedIn: '3.5.23' },
      { from: '3.6.0', fixedIn: '3.6.5' },
    ],
    severity: 'warn',
  },
];

/** [major, minor, patch] of "3.5.4" or "3.6.0-rc.1" (a pre-release counts as its release); null when not a version. */
export function parseVersion(version: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`; versions that do not parse sort first. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [-1, -1, -1];
  const y = parseVersion(b) ?? [-1, -1, -1];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** A defect a release has, with the release in its line that fixed it. */
export interface DefectFinding {
  defect: KnownDefect;
  fixedIn: string;
}

/**
 * The known defects of one etcd release, most serious first.
 *
 * @example
 * defectsOf('3.5.4').map((f) => f.defect.issue) // ['etcd#14685', 'etcd#18810', 'etcd#18841', 'etcd#20271']
 */
export function defectsOf(version: string, table: readonly KnownDefect[] = KNOWN_DEFECTS): DefectFinding[] {
  if (parseVersion(version) === null) return [];
  const found: DefectFinding[] = [];
  for (const defect of table) {
    const range = defect.affected.find((r) => compareVersions(version, r.from) >= 0 && compareVersions(version, r.fixedIn) < 0);
    if (range) found.push({ defect, fixedIn: range.fixedIn });
  }
  return found.sort((a, b) => (a.defect.severity === b.defect.severity ? 0 : a.defect.severity === 'refuse' ? -1 : 1));
}
