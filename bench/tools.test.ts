import { describe, expect, it } from 'vitest';
import { etcdDefragBin, parseEtcdctlDefragLine, parseEtcdDefragLine } from './tools.js';

describe("etcdctl defrag's output, as each version prints it", () => {
  it.each([
    ['3.4/3.5 done', 'Finished defragmenting etcd member[http://127.0.0.1:2379]', { url: 'http://127.0.0.1:2379', ok: true, note: null }],
    [
      '3.6+ done',
      'Finished defragmenting etcd member[http://127.0.0.1:2379]. took 2.846888284s',
      { url: 'http://127.0.0.1:2379', ok: true, note: null },
    ],
    [
      '3.4/3.5 failed',
      'Failed to defragment etcd member[http://127.0.0.1:2379] (context deadline exceeded)',
      { url: 'http://127.0.0.1:2379', ok: false, note: 'context deadline exceeded' },
    ],
    [
      '3.6+ failed',
      'Failed to defragment etcd member[http://127.0.0.1:2379]. took 5.000316s. (context deadline exceeded)',
      { url: 'http://127.0.0.1:2379', ok: false, note: 'context deadline exceeded' },
    ],
    ['anything else', '{"level":"warn","msg":"retrying of unary invoker failed"}', null],
  ])('%s', (_what, line, expected) => {
    expect(parseEtcdctlDefragLine(line)).toEqual(expected);
  });
});

describe("ahrtr/etcd-defrag's log (v0.42.0's main.go), as it prints it", () => {
  it.each([
    [
      'a member starts',
      '2026/12/07 18:00:04 Defragmenting endpoint "http://127.0.0.1:2379"',
      { kind: 'start', url: 'http://127.0.0.1:2379' },
    ],
    [
      'a member is done',
      '2026/12/07 18:00:05 Finished defragmenting etcd endpoint "http://127.0.0.1:2379". took 28.41525ms',
      { kind: 'end', url: 'http://127.0.0.1:2379', ok: true, note: null },
    ],
    [
      'a member failed',
      '2026/12/07 18:00:35 Failed to defragment etcd member "http://127.0.0.1:2379". took 30.0001s. (context deadline exceeded)',
      { kind: 'end', url: 'http://127.0.0.1:2379', ok: false, note: 'context deadline exceeded' },
    ],
    ['its compaction', '2026/12/07 18:00:04 Running compaction until revision: 1234 ... ', { kind: 'compaction', revision: 1234 }],
    ['anything else', '2026/12/07 18:00:04 Performing health check.', null],
  ])('%s', (_what, line, expected) => {
    expect(parseEtcdDefragLine(line)).toEqual(expected);
  });

  it('its binary: ETCD_DEFRAG when that file exists, else none where nothing was built', () => {
    expect(etcdDefragBin({ ETCD_DEFRAG: process.execPath, DEFRAGD_CACHE: '/nonexistent' })).toBe(process.execPath);
    expect(etcdDefragBin({ ETCD_DEFRAG: '/nonexistent/etcd-defrag', DEFRAGD_CACHE: '/nonexistent' })).toBeNull();
  });
});
