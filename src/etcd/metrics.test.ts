import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { fetchGauges, GaugeScan, parseGauges } from './metrics.js';

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

describe('GaugeScan', () => {
  const names = [
    'etcd_server_quota_backend_bytes',
    'etcd_disk_defrag_inflight',
    'etcd_mvcc_db_total_size_in_bytes',
    'etcd_disk_backend_defrag_duration_seconds_bucket',
    'absent_metric',
  ];
  const expected = parseGauges(SAMPLE, names);

  it('finds what parseGauges finds, wherever the chunks are cut', () => {
    const wrong: string[] = [];
    const want = JSON.stringify([...expected]);
    for (let a = 0; a <= SAMPLE.length; a++) {
      for (let b = a; b <= SAMPLE.length; b += 5) {
        const scan = new GaugeScan(names);
        for (const chunk of [SAMPLE.slice(0, a), SAMPLE.slice(a, b), SAMPLE.slice(b)]) scan.push(chunk);
        // absent_metric is never found, so the scan is never done.
        if (JSON.stringify([...scan.found]) !== want || scan.done) wrong.push(`cut at ${a}, ${b}: ${JSON.stringify([...scan.found])}`);
      }
    }
    expect(expected.size).toBe(3);
    expect(wrong).toEqual([]);
  });

  it('is done once every name was found, also on the first line, and tells a name from a longer one and from a labelled series', () => {
    const scan = new GaugeScan(['a_total', 'b']);
    expect(scan.push('a_total 1\na_total_x 2\nb{x="1"} 3\nb_c 4\n')).toBe(false);
    expect(scan.push('b\t5\n')).toBe(true);
    expect(scan.found).toEqual(
      new Map([
        ['a_total', 1],
        ['b', 5],
      ]),
    );
  });
});

describe('GaugeScan with a labelled series (etcd 3.6+ feature gates)', () => {
  // As etcd 3.6.17 prints them; the gate asked for is neither the first nor the last.
  const GATES = `etcd_server_feature_enabled{name="AllAlpha",stage="ALPHA"} 0
etcd_server_feature_enabled{name="StopGRPCServiceOnDefragX",stage="ALPHA"} 0
etcd_server_feature_enabled{name="StopGRPCServiceOnDefrag",stage="ALPHA"} 1
etcd_server_feature_enabled{name="TxnModeWriteWithSharedBuffer",stage="BETA"} 1
`;
  const gate = 'etcd_server_feature_enabled{name="StopGRPCServiceOnDefrag"';

  it('reads the series whose labels start so, not one whose label only starts the same, wherever the chunks are cut', () => {
    const wrong: string[] = [];
    for (let a = 0; a <= GATES.length; a++) {
      const scan = new GaugeScan([gate]);
      scan.push(GATES.slice(0, a));
      scan.push(GATES.slice(a));
      if (scan.found.get(gate) !== 1) wrong.push(`cut at ${a}: ${JSON.stringify([...scan.found])}`);
    }
    expect(wrong).toEqual([]);
  });

  it('finds nothing where the gate is not exported (etcd 3.5) or is off', () => {
    expect(new GaugeScan([gate]).push(SAMPLE)).toBe(false);
    const off = new GaugeScan([gate]);
    off.push(GATES.replace('StopGRPCServiceOnDefrag",stage="ALPHA"} 1', 'StopGRPCServiceOnDefrag",stage="BETA"} 0'));
    expect(off.found.get(gate)).toBe(0);
  });
});

describe('fetchGauges', () => {
  it('resolves as soon as every name asked for has arrived, without reading the rest of the exposition', async () => {
    // A member whose exposition never ends after the gauge: reading to the end would time out (null).
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('# TYPE etcd_disk_defrag_inflight gauge\netcd_disk_defrag_inflight 1\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const g = await fetchGauges(url, ['etcd_disk_defrag_inflight'], null, { timeoutMs: 3_000 });
      expect(g).toEqual(new Map([['etcd_disk_defrag_inflight', 1]]));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
