/**
 * Bad input through the real executable: one line naming what was wrong, a
 * non-zero exit, no stack trace. Runs the built CLI (dist/), as users do.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = `${ROOT}dist/cli/main.js`;

// Asynchronous on purpose: the fake HTTP server below lives in this process and must keep answering.
function defragd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

function expectOneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^defragd: /);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('bad input', async () => {
  const cluster = useCluster({ members: 1 });
  let httpServer: http.Server;
  let httpPort = 0;

  beforeAll(async () => {
    if (!existsSync(BIN)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    httpServer = http.createServer((_req, res) => res.end('not etcd'));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    httpPort = (httpServer.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => httpServer.close(() => r())));

  it('an unreachable endpoint', async () => {
    const r = await defragd(['status', '--endpoints', '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /127\.0\.0\.1:1: connection refused/);
  });

  it('a port that speaks HTTP but not etcd gRPC', async () => {
    const r = await defragd(['status', '--endpoints', `127.0.0.1:${httpPort}`]);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /does not speak etcd's gRPC API/);
  });

  it('an endpoint that accepts connections but never answers: --dial-timeout bounds the wait', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as AddressInfo).port;
      const r = await defragd(['status', '--endpoints', `127.0.0.1:${port}`, '--dial-timeout', '1s']);
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, /could not connect within 1s \(--dial-timeout\)/);
    } finally {
      silent.close();
    }
  });

  it('a malformed endpoint', async () => {
    const r = await defragd(['status', '--endpoints', 'http://127.0.0.1']);
    expect(r.code).toBe(2);
    expectOneLine(r.stderr, /malformed endpoint "http:\/\/127\.0\.0\.1": no port/);
    expect(r.stdout).toBe('');
  });

  it('a missing cert file', async () => {
    const r = await defragd(['status', '--endpoints', cluster().endpoints[0] as string, '--cert', '/no/cert.pem', '--key', '/no/key.pem']);
    expect(r.code).toBe(2);
    expectOneLine(r.stderr, /--cert \/no\/cert\.pem: no such file/);
  });

  it('--user without a password (a wrong password is in the auth tests)', async () => {
    const r = await defragd(['status', '--endpoints', cluster().endpoints[0] as string, '--user', 'root']);
    expect(r.code).toBe(2);
    expectOneLine(r.stderr, /--user given without a password/);
  });

  it('an unknown flag, an unknown format, an unknown command', async () => {
    for (const [args, pattern] of [
      [['status', '--bogus'], /unknown option '--bogus'/],
      [['status', '-w', 'yaml'], /unknown format "yaml"/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['status', '--command-timeout', 'soon'], /invalid duration "soon"/],
    ] as const) {
      const r = await defragd([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLine(r.stderr, pattern);
    }
  });

  it('--debug shows the stack trace for whoever asks', async () => {
    const r = await defragd(['status', '--endpoints', '127.0.0.1:1', '--debug', '--cluster']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it('--help and --version work from the built package', async () => {
    const help = await defragd(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/status/);
    expect(help.stdout).toMatch(/defrag/);
    const v = await defragd(['--version']);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
