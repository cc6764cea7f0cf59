/**
 * What the etcd under test does, for tests whose expectation depends on its release
 * (make test runs the etcd tests on every pinned version: dev/harness/etcd.ts).
 */
import { etcdUnderTest } from '../../dev/harness/etcd.js';
import { compareVersions } from '../../src/domain/known-defects.js';

/** The exact release under test, e.g. "3.6.17". */
export const ETCD_VERSION = etcdUnderTest().version;

/** Whether the release under test is `version` or newer. */
export function etcdAtLeast(version: string): boolean {
  return compareVersions(ETCD_VERSION, version) >= 0;
}

/**
 * Where defragd finds a member's quota when `--quota-backend-bytes` is set: Status's dbSizeQuota from
 * 3.6 (etcd PR #17877), the member's /metrics before. (Unset, 3.6.0-3.6.5 report 0 and /metrics is read.)
 */
export const QUOTA_SOURCE_WITH_FLAG: 'status' | 'metrics' = etcdAtLeast('3.6.0') ? 'status' : 'metrics';

/** What `stopGrpcServiceOnDefrag` reads on a member started without the gate: 3.6+ export it (off), 3.5 and 3.4 do not tell. */
export const STOP_GRPC_DEFAULT: boolean | null = etcdAtLeast('3.6.0') ? false : null;

const defectWarning = new RegExp(
  `runs etcd ${ETCD_VERSION.replace(/\./g, '\\.')}, which has (a known defrag defect|\\d+ known defrag defects)`,
);

/**
 * The lines (plan warnings, or stderr split into lines) other than defragd's warnings about the known
 * defrag defects of the release under test: on 3.4.23 every command warns about each member (see
 * src/domain/known-defects.ts), on the pinned 3.5, 3.6 and 3.7 none; tests that expect no other
 * warning compare what is left, and `expectDefectWarnings` checks those.
 */
export function apartFromDefectWarnings(lines: readonly string[]): string[] {
  return lines.filter((l) => !defectWarning.test(l));
}

/** How many of `lines` are defect warnings about the release under test. */
export function defectWarnings(lines: readonly string[]): number {
  return lines.filter((l) => defectWarning.test(l)).length;
}
