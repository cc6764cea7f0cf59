import { describe, expect, it } from 'vitest';
import { parseGauges } from './metrics.js';

// Lines as etcd 3.4/3.5 print them on /metrics.
const SAMPLE = `# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.
# TYPE etcd_server_quota_backend_bytes gauge
etcd_server_quota_backend_bytes 2.147483648e+09
# TYPE etcd_disk_defrag_inflight gauge
etcd_disk_defrag_inflight 1
etcd_disk_backend_defrag_duration_seconds_bucket{le="0.1"} 3
etcd_mvcc_db_total_size_in_bytes 1.23456e+08
`;

describe('parseGauges', () => {
  it('reads unlabelled samples in exponent notation', () => {
    const g = parseGauges(SAMPLE);
    expect(g.get('etcd_server_quota_backend_bytes')).toBe(2147483648);
    expect(g.get('etcd_disk_defrag_inflight')).toBe(1);
    expect(g.get('etcd_mvcc_db_total_size_in_bytes')).toBe(123456000);
  });
  it('keeps only the names asked for and skips labelled series', () => {
    const g = parseGauges(SAMPLE, ['etcd_disk_defrag_inflight', 'etcd_disk_backend_defrag_duration_seconds_bucket']);
    expect([...g.keys()]).toEqual(['etcd_disk_defrag_inflight']);
  });
});
