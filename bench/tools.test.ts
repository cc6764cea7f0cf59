import { describe, expect, it } from 'vitest';
import { parseEtcdctlDefragLine } from './tools.js';

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
