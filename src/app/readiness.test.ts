/**
 * urlReadiness against real HTTP servers on loopback: what a URL answered, as the run's report will
 * quote it. (The https path runs against a real kube-apiserver in test/integration.)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../domain/errors.js';
import { checkReadinessUrl, urlReadiness } from './readiness.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A port nothing listens on: one that was just closed. */
async function closedPort(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}/readyz`;
}

const READYZ_FAILED = [
  '[+]ping ok',
  '[+]log ok',
  '[-]etcd failed: reason withheld',
  '[+]poststarthook/start-apiserver-admission-initializer ok',
  '[-]etcd-readiness failed: reason withheld',
  'readyz check failed',
].join('\n');

describe('urlReadiness', () => {
  it('200 is ready; anything else is not, with the failed checks of a kube-apiserver body', async () => {
    let healthy = true;
    let headers: http.IncomingHttpHeaders = {};
    const base = await serve((req, res) => {
      headers = req.headers;
      if (healthy) res.end('ok');
      else {
        res.statusCode = 500;
        res.end(READYZ_FAILED);
      }
    });
    const port = urlReadiness({ urls: [`${base}/readyz`], timeoutMs: 30_000, bearerToken: 's3cret' });
    expect(port.urls).toEqual([`${base}/readyz`]);
    expect(port.timeoutMs).toBe(30_000);
    expect(await port.check()).toEqual([{ url: `${base}/readyz`, ready: true, detail: '200' }]);
    expect(headers['authorization']).toBe('Bearer s3cret');
    healthy = false;
    expect(await port.check()).toEqual([
      { url: `${base}/readyz`, ready: false, detail: '500: [-]etcd failed: reason withheld; [-]etcd-readiness failed: reason withheld' },
    ]);
  });

  it("an apiserver's Status object (401 without credentials) is told by its message, and is final: no wait changes it", async () => {
    const base = await serve((_req, res) => {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end(
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}',
      );
    });
    expect(await urlReadiness({ urls: [`${base}/readyz`] }).check()).toEqual([
      { url: `${base}/readyz`, ready: false, detail: '401: Unauthorized', final: true },
    ]);
  });

  it('a redirect or another 2xx is not ready: only 200 is', async () => {
    const base = await serve((req, res) => {
      res.statusCode = req.url === '/moved' ? 302 : 204;
      if (req.url === '/moved') res.setHeader('location', '/elsewhere');
      res.end();
    });
    const port = urlReadiness({ urls: [`${base}/moved`, `${base}/empty`] });
    expect(await port.check()).toEqual([
      { url: `${base}/moved`, ready: false, detail: '302' },
      { url: `${base}/empty`, ready: false, detail: '204' },
    ]);
  });

  it('a refused connection and a server that does not answer in time are answers too, never errors', async () => {
    const refused = await closedPort();
    const slow = await serve(() => undefined);
    const port = urlReadiness({ urls: [refused, `${slow}/readyz`], requestTimeoutMs: 200 });
    const t0 = Date.now();
    expect(await port.check()).toEqual([
      { url: refused, ready: false, detail: 'connection refused' },
      { url: `${slow}/readyz`, ready: false, detail: 'no answer in time' },
    ]);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('an aborted run ends a check at once', async () => {
    const slow = await serve(() => undefined);
    const port = urlReadiness({ urls: [`${slow}/readyz`], requestTimeoutMs: 60_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect(await port.check(ac.signal)).toEqual([{ url: `${slow}/readyz`, ready: false, detail: 'interrupted' }]);
  });
});

describe('checkReadinessUrl', () => {
  it.each([
    ['apiserver:6443/readyz', 'is not an http:// or https:// URL'],
    ['not a url', 'is not a URL'],
    ['ftp://host/readyz', 'is not an http:// or https:// URL'],
    ['https://admin:pw@host:6443/readyz', 'holds a user name or password'],
  ])('refuses %s', (text, why) => {
    expect(() => checkReadinessUrl(text, '--wait-for-url')).toThrow(UsageError);
    expect(() => checkReadinessUrl(text, '--wait-for-url')).toThrow(why);
  });

  it('takes http and https URLs as given', () => {
    expect(checkReadinessUrl('https://10.0.0.1:6443/readyz', 'x')).toBe('https://10.0.0.1:6443/readyz');
    expect(checkReadinessUrl('http://[::1]:8080/healthz', 'x')).toBe('http://[::1]:8080/healthz');
  });
});
