import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { blackHolePort, closedPort, notEtcdHttpServer } from './faults.js';

type ConnectOutcome = { connected: true; bytes: number } | { connected: false; code: string };

/** Connect to a loopback port, send a line, collect what comes back within `listenMs`. */
function probe(port: number, listenMs: number): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let bytes = 0;
    let connected = false;
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.on('connect', () => {
      connected = true;
      socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      setTimeout(() => {
        socket.destroy();
        resolve({ connected: true, bytes });
      }, listenMs);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) resolve({ connected: false, code: err.code ?? String(err) });
    });
  });
}

describe('fault endpoints', () => {
  it('blackHolePort accepts on 127.0.0.1 and never answers; refuses after close', async () => {
    const hole = await blackHolePort();
    try {
      expect(hole.url).toBe(`http://127.0.0.1:${hole.port}`);
      expect(await probe(hole.port, 300)).toEqual({ connected: true, bytes: 0 });
    } finally {
      await hole.close();
    }
    expect(await probe(hole.port, 0)).toEqual({ connected: false, code: 'ECONNREFUSED' });
    await hole.close(); // idempotent
  });

  it('blackHolePort close() does not wait for a client that never hangs up', async () => {
    const hole = await blackHolePort();
    const client = net.connect({ host: '127.0.0.1', port: hole.port });
    client.on('error', () => {});
    await new Promise((resolve) => client.once('connect', resolve));
    const closedBy = Date.now();
    await hole.close();
    expect(Date.now() - closedBy).toBeLessThan(1000);
    client.destroy();
  });

  it('closedPort refuses connections', async () => {
    const closed = await closedPort();
    try {
      expect(closed.url).toBe(`http://127.0.0.1:${closed.port}`);
      expect(await probe(closed.port, 0)).toEqual({ connected: false, code: 'ECONNREFUSED' });
    } finally {
      await closed.close();
    }
  });

  it('notEtcdHttpServer answers 200 hello to any method and path', async () => {
    const server = await notEtcdHttpServer();
    try {
      for (const [method, urlPath] of [
        ['GET', '/health'],
        ['POST', '/etcdserverpb.Maintenance/Status'],
      ] as const) {
        const res = await fetch(server.url + urlPath, { method, body: method === 'POST' ? 'x' : undefined });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('hello');
      }
    } finally {
      await server.close();
    }
    expect(await probe(server.port, 0)).toEqual({ connected: false, code: 'ECONNREFUSED' });
  });
});
