/**
 * Endpoints that misbehave, for tests of what defragd does when an endpoint is not a
 * healthy etcd: one that accepts and then says nothing, one that refuses, and one that
 * speaks HTTP/1.1 but is not etcd. All listen on 127.0.0.1 only; close each one in the
 * test (`afterEach`/`finally`).
 */
import http from 'node:http';
import net from 'node:net';

/** A local endpoint made by one of the helpers below. */
export interface FaultEndpoint {
  /** Loopback port. */
  port: number;
  /** `http://127.0.0.1:PORT`, to pass as an etcd endpoint. */
  url: string;
  /** Stop listening and drop open connections. Idempotent. */
  close(): Promise<void>;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') reject(new Error('unexpected server address'));
      else resolve(addr.port);
    });
  });
}

function closer(server: net.Server, beforeClose: () => void): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () => {
    closing ??= new Promise<void>((resolve) => {
      beforeClose();
      server.close(() => resolve());
    });
    return closing;
  };
}

/**
 * A TCP server that accepts connections and never sends a byte (nor closes them): a client
 * hangs until its own deadline, as with a host that lost its process behind a live socket.
 * @example
 * const hole = await blackHolePort();
 * try { await expect(run({ endpoints: [hole.url], dialTimeoutMs: 500 })).rejects.toThrow(); }
 * finally { await hole.close(); }
 */
export async function blackHolePort(): Promise<FaultEndpoint> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {
      /* the client went away */
    });
    socket.once('close', () => sockets.delete(socket));
    // Read and drop, so a client's writes never block on a full window.
    socket.resume();
  });
  const port = await listen(server);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: closer(server, () => {
      for (const s of sockets) s.destroy();
    }),
  };
}

/**
 * A loopback port with nothing listening: connections are refused (ECONNREFUSED). The port
 * was free a moment ago; another process could take it, which is unlikely within a test.
 */
export async function closedPort(): Promise<FaultEndpoint> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { port, url: `http://127.0.0.1:${port}`, close: () => Promise.resolve() };
}

/** An HTTP/1.1 server answering `200 hello` (text/plain) to every method and path. */
export async function notEtcdHttpServer(): Promise<FaultEndpoint> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello');
  });
  const port = await listen(server);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: closer(server, () => server.closeAllConnections()),
  };
}
