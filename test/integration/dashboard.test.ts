/**
 * The dashboard in a real browser (Debian's Chromium driven by
 * playwright-core; never a downloaded browser) against a real daemon
 * (serve() in this process, the page built by scripts/build-web.mjs into the
 * package's dist/web as `npm run build` does) on a real 3-member etcd. What an
 * operator checks: the overview shows each member with the figures `defragd
 * status` prints; the cluster page's chart is drawn from the stored samples;
 * a run started from the page shows live, then in the history and on the
 * chart; actions are disabled without a token and a wrong token is refused;
 * nothing is fetched from outside the daemon. Screenshots go to
 * test-artifacts/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { formatBytes, formatPercent } from '../../src/domain/format.js';
import type { ServeConfig } from '../../src/serve/config.js';
import { cli, fragmentAndWait, MiB, parseJson } from './helpers-defrag.js';
import { getJson, startServe, until, type RunningServe } from './serve-support.js';

// The browser's globals, for the functions run in the page (page.evaluate); this tsconfig has no DOM lib.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any, document: any, sessionStorage: any, MutationObserver: any;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
/** Chromium's own background connections would hit this machine's closed network: all off. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

type StatusRow = {
  name: string;
  dbSize: number;
  dbSizeInUse: number;
  dbSizeFree: number;
  fragmentation: number;
  quota: number;
  quotaUsage: number;
  isLeader: boolean;
};
type ChartDump = {
  labels: string[];
  strokes: string[];
  dashed: boolean[];
  xTicks: string[];
  yTicks: string[];
  yTickValues: number[];
  pointsAt300: boolean;
  horizontalCursor: number;
  data: (number | null)[][];
  runIds: string;
};

/** Observe every second (the config's minimum is the default 30 s without auto). */
const fastObserve = (c: ServeConfig): ServeConfig => ({ ...c, clusters: c.clusters.map((x) => ({ ...x, observeIntervalMs: 1_000 })) });

describe('the dashboard in Chromium, on a real daemon and a 3-member cluster', () => {
  let cluster: EtcdCluster;
  let dir: string;
  let userDataDir: string;
  let daemon: RunningServe;
  let browser: BrowserContext;
  let page: Page;
  /** The daemons' origins: the only ones the browser may reach. */
  const origins = new Set<string>();
  /** Every request the page made outside the daemon's origin (each was blocked). */
  const outside: string[] = [];
  /** Console errors and uncaught exceptions of the page (a CSP violation is one). */
  const pageErrors: string[] = [];

  const status = async () =>
    parseJson<StatusRow[]>(await cli(['status', '--endpoints', cluster.endpoints.join(','), '--cluster', '-w', 'json']));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/ensure-chromium.sh; make test does)`);
    // The page as `npm run build` makes it, where serve() looks for it by default.
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { cwd: ROOT, stdio: 'pipe' });
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'defragd-dashboard-'));
    userDataDir = mkdtempSync(join(tmpdir(), 'defragd-chromium-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    cluster = await startCluster({ members: 3, quotaBackendBytes: 256 * MiB });
    await fragmentAndWait({ endpoints: cluster.endpoints }, { bytes: 16 * MiB, passes: 2, minFree: 6 * MiB, members: 3 });
    daemon = await startServe(
      dir,
      'dash',
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'dash.sqlite')}\napiTokenFile: ./token\nclusters:\n  - name: main\n    endpoints: [${cluster.endpoints.join(', ')}]\n    schedule: "0 3 * * 0"\n    windows: ["Sun 01:00-05:00"]\n    defrag: { waitBetween: 1s }\n`,
      { adjust: fastObserve },
    );
    origins.add(new URL(daemon.url).origin);
    await until('the daemon ready', async () => (await fetch(`${daemon.url}/readyz`)).status === 200);
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    // Only the daemon's origin gets through: the page must work air-gapped and fetch nothing else.
    await browser.route('**/*', (route) => {
      const url = route.request().url();
      if (origins.has(new URL(url).origin)) return route.continue();
      outside.push(url);
      return route.abort('blockedbyclient');
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('console', (m) => {
      // A refused token is a 401 the test asks for; the browser logs each failed fetch.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop();
    await cluster?.close();
    for (const d of [dir, userDataDir]) if (d) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it('the overview lists every member with the sizes `defragd status -w json` gives, formatted as the CLI prints them', async () => {
    await page.goto(`${daemon.url}/`);
    await page.locator('.card[data-cluster="main"] .member').first().waitFor();
    const expected = (rows: StatusRow[]) =>
      rows
        .map((m) => ({
          name: m.name,
          leader: m.isLeader,
          size: formatBytes(m.dbSize),
          inUse: formatBytes(m.dbSizeInUse),
          free: formatBytes(m.dbSizeFree),
          frag: `(frag ${formatPercent(m.fragmentation)})`,
          quota: formatBytes(m.quota),
          quotaUse: `(${formatPercent(m.quotaUsage)})`,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    const shown = () =>
      page.$$eval('.card[data-cluster="main"] .member', (items) =>
        items.map((li) => {
          const text = (sel: string) => li.querySelector(sel)?.textContent?.trim() ?? null;
          return {
            name: li.getAttribute('data-member') ?? '',
            leader: li.querySelector('.badge.leader') !== null,
            size: text('.db-size'),
            inUse: text('.in-use'),
            free: text('.free'),
            frag: text('.frag'),
            quota: text('.quota'),
            quotaUse: text('.quota-use'),
          };
        }),
      );
    // The page polls every few seconds; the cluster is quiet, so both settle on the same figures.
    let last: unknown = null;
    await until(
      'the overview to show what status shows',
      async () => {
        const [want, got] = [expected(await status()), await shown()];
        last = { want, got };
        return JSON.stringify(want) === JSON.stringify(got);
      },
      20_000,
      () => JSON.stringify(last, null, 1),
    );
    const got = await shown();
    // Listed by name, whatever etcd's member-list order.
    expect(got.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
    expect(got.filter((m) => m.leader)).toHaveLength(1);
    expect(await page.locator('.card[data-cluster="main"] .state').textContent()).toBe('idle');
    expect(await page.locator('.card[data-cluster="main"] .next-run time').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'overview-1280.png'), fullPage: true });
  });

  it('the cluster page draws its chart from the stored samples: a dbSize and an in-use series per member, the last points equal to status', async () => {
    await page.goto(`${daemon.url}/#/clusters/main`);
    const dump = () =>
      page.evaluate((): ChartDump | null => {
        type Axis = { _values?: string[] | null; _splits?: number[] | null };
        type Series = {
          label?: string;
          stroke?: () => string;
          dash?: number[];
          points?: { show?: (u: unknown, s: number, i0: number, i1: number) => boolean };
        };
        const el = document.querySelector('.chart') as {
          dataset: Record<string, string>;
          uplot?: { series: Series[]; axes: Axis[]; data: (number | null)[][] };
        } | null;
        const u = el?.uplot;
        if (!el || !u) return null;
        return {
          labels: u.series.map((s) => String(s.label)),
          strokes: u.series.map((s) => String(s.stroke?.() ?? '')),
          dashed: u.series.map((s) => (s.dash?.length ?? 0) > 0),
          // What the axes print (uPlot draws them on the canvas; these are its labels).
          xTicks: [...(u.axes[0]?._values ?? [])],
          yTicks: [...(u.axes[1]?._values ?? [])],
          yTickValues: [...(u.axes[1]?._splits ?? [])],
          pointsAt300: u.series[1]?.points?.show?.(u, 1, 0, 300) === true,
          horizontalCursor: document.querySelectorAll('.chart .u-cursor-y').length,
          data: u.data.map((col) => Array.from(col)),
          runIds: el.dataset['runIds'] ?? '',
        };
      });
    // A few observations (one a second) reach the chart through the page's polling.
    const chart = await until(
      'a chart with at least 3 points',
      async () => {
        const d = await dump();
        return d !== null && (d.data[0]?.length ?? 0) >= 3 ? d : null;
      },
      30_000,
    );
    const rows = await status();
    expect(chart.labels[0]).toBe('time');
    expect(chart.labels.at(-1)).toBe('quota');
    // By name, each member's dbSize then its in-use size, as a pair: one hue each, in use dashed.
    expect(chart.labels.slice(1, -1)).toEqual(
      rows
        .map((m) => m.name)
        .sort()
        .flatMap((n) => [`${n} dbSize`, `${n} in use`]),
    );
    const memberStrokes = chart.strokes.slice(1, -1);
    for (let i = 0; i < memberStrokes.length; i += 2) {
      expect(memberStrokes[i + 1]).toBe(memberStrokes[i]);
      expect([chart.dashed[i + 1], chart.dashed[i + 2]]).toEqual([false, true]);
    }
    const hues = memberStrokes.filter((_, i) => i % 2 === 0);
    expect(new Set(hues).size).toBe(rows.length);
    expect(hues).not.toContain(chart.strokes.at(-1));
    // Lines only once the points are many.
    expect(chart.pointsAt300).toBe(false);
    // 24-hour times; round binary sizes on the y axis, from 0; no horizontal cursor line to mistake for a threshold.
    expect(chart.xTicks.length).toBeGreaterThanOrEqual(2);
    for (const t of chart.xTicks) expect(t).toMatch(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$|^\d{2}-\d{2}$/);
    expect(chart.yTicks[0]).toBe('0');
    const step = (chart.yTickValues[1] ?? 0) - (chart.yTickValues[0] ?? 0);
    expect(Math.log2(step) % 1).toBe(0);
    for (const t of chart.yTicks.slice(1)) expect(t).toMatch(/^\d+(\.\d+)? (KiB|MiB|GiB)$/);
    expect(chart.horizontalCursor).toBe(0);
    const api = (
      await getJson<{ members: { name: string; atMs: number[]; dbSize: number[] }[] }>(
        `${daemon.url}/api/v1/clusters/main/samples?range=1h`,
      )
    ).body;
    const now = Date.now() / 1000;
    for (const x of chart.data[0] as number[]) expect(x).toBeGreaterThan(now - 3_600);
    for (const m of rows) {
      const col = chart.data[chart.labels.indexOf(`${m.name} dbSize`)] as (number | null)[];
      const inUse = chart.data[chart.labels.indexOf(`${m.name} in use`)] as (number | null)[];
      const lastOf = (c: (number | null)[]) => c.filter((v): v is number => v !== null).at(-1);
      // The quiet cluster: its newest sample is what status says now.
      expect(lastOf(col)).toBe(m.dbSize);
      expect(lastOf(inUse)).toBe(m.dbSizeInUse);
      // Every point of the chart is a stored sample of that member.
      const series = api.members.find((s) => s.name === m.name);
      const stored = new Map(series?.atMs.map((t, i) => [t / 1000, series.dbSize[i]]));
      (chart.data[0] as number[]).forEach((x, i) => {
        if (col[i] !== null && stored.has(x)) expect(col[i]).toBe(stored.get(x));
      });
      expect(col.filter((v) => v !== null).length).toBeGreaterThanOrEqual(2);
    }
    expect(
      chart.data
        .at(-1)
        ?.filter((v) => v !== null)
        .every((q) => q === 256 * MiB),
    ).toBe(true);
    // The range picker asks for another range; the chart follows.
    await page.getByRole('button', { name: '24 h', exact: true }).click();
    await until(
      'the 24 h range pressed',
      async () => (await page.getByRole('button', { name: '24 h', exact: true }).getAttribute('aria-pressed')) === 'true',
    );
    await page.getByRole('button', { name: '1 h', exact: true }).click();
  });

  it('actions are disabled with the reason when the daemon has no token; a wrong token is refused (401), the right one plans a dry run', async () => {
    // A second daemon on the same cluster without apiTokenFile.
    const open = await startServe(
      dir,
      'no-token',
      `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n  - name: main\n    endpoints: [${cluster.endpoints.join(', ')}]\n`,
    );
    origins.add(new URL(open.url).origin);
    const other = await browser.newPage();
    try {
      await other.goto(`${open.url}/#/clusters/main`);
      const dry = other.getByRole('button', { name: 'Dry run' });
      const now = other.getByRole('button', { name: 'Defragment now' });
      await until('the actions to know there is no token', async () =>
        /no API token is configured/.test((await other.locator('.actions-reason').textContent()) ?? ''),
      );
      expect(await dry.isDisabled()).toBe(true);
      expect(await now.isDisabled()).toBe(true);
      expect(await other.locator('#api-token').count()).toBe(0);
    } finally {
      await other.close();
      await open.stop();
    }

    await page.goto(`${daemon.url}/#/clusters/main`);
    const dry = page.getByRole('button', { name: 'Dry run' });
    await page.getByLabel('API token').waitFor();
    expect(await dry.isDisabled()).toBe(true);
    await page.getByLabel('API token').fill('not-the-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await dry.click();
    await page.getByText(/The token was refused \(401\)/).waitFor();
    // Refused: forgotten, asked for again.
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('defragd.apiToken'))).toBeNull();

    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await dry.click();
    const plan = page.locator('.plan-table tbody tr');
    await plan.first().waitFor();
    const rows = await plan.evaluateAll((trs) =>
      trs.map((tr) => ({
        member: tr.getAttribute('data-member'),
        cells: [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? ''),
      })),
    );
    const leader = (await status()).find((m) => m.isLeader)?.name;
    expect(rows.map((r) => r.cells[2])).toEqual(['defragment', 'defragment', 'defragment']);
    // Followers first, the leader last after handing over its leadership.
    expect(rows.at(-1)?.member).toBe(leader);
    expect(rows.at(-1)?.cells[3]).toMatch(/^leadership to m\d first$/);
    expect(rows.slice(0, 2).map((r) => r.cells[3])).toEqual(['–', '–']);
    // The token stays for this tab.
    expect(await page.evaluate(() => sessionStorage.getItem('defragd.apiToken'))).toBe(TOKEN);
  });

  it('a run started from the page shows live (each member in progress), then in the history table, on the chart and in the overview', async () => {
    await page.goto(`${daemon.url}/#/clusters/main`);
    await page.getByRole('button', { name: 'Defragment now' }).waitFor();
    await until('the token to be in use', async () => (await page.locator('.token-set').count()) === 1);
    // The event stream is open (the page says "live"): no event of the run can be missed.
    await until('the event stream open', async () => (await page.locator('#live').textContent()) === 'live');
    // Everything the page shows as being defragmented, however briefly.
    await page.evaluate(() => {
      const seen: { members: string[]; elapsed: boolean } = { members: [], elapsed: false };
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.progress .current-member') as { textContent: string | null }[])
          if (!seen.members.includes(el.textContent ?? '')) seen.members.push(el.textContent ?? '');
        if (document.querySelector('.progress .elapsed')) seen.elapsed = true;
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByRole('button', { name: 'Defragment now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Defragment main now?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Defragment', exact: true }).click();
    const started = await page.locator('.ok-line').textContent({ timeout: 15_000 });
    const runId = Number(/Run (\d+) started/.exec(started ?? '')?.[1]);
    expect(runId).toBeGreaterThan(0);
    await page.locator('.progress').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'cluster-running-1280.png'), fullPage: true });

    const row = page.locator(`.history tr.run-row[data-run-id="${runId}"]`);
    await until(
      'the run in the history, finished',
      async () => (await row.count()) === 1 && (await row.locator('td.outcome').textContent()) === 'success',
      60_000,
    );
    const seen = await page.evaluate(() => (window as unknown as { seen: { members: string[]; elapsed: boolean } }).seen);
    expect(seen.members.sort()).toEqual(['m1', 'm2', 'm3']);
    expect(seen.elapsed).toBe(true);
    await until('the progress gone', async () => (await page.locator('.progress').count()) === 0);
    expect(await row.locator('.trigger').textContent()).toBe('api');
    const detail = (await getJson<{ run: { reclaimedBytes: number; durationMs: number } }>(`${daemon.url}/api/v1/runs/${runId}`)).body.run;
    expect(detail.reclaimedBytes).toBeGreaterThan(0);
    expect(await row.locator('.reclaimed').textContent()).toBe(formatBytes(detail.reclaimedBytes));

    // The row opens the run's members and events.
    await row.getByRole('button').click();
    const members = page.locator(`#run-${runId} .run-members tbody tr`);
    await members.first().waitFor();
    expect(await members.evaluateAll((trs) => trs.map((tr) => tr.querySelectorAll('td')[1]?.textContent))).toEqual([
      'defragmented',
      'defragmented',
      'defragmented',
    ]);
    expect(await page.locator(`#run-${runId} .events li`).count()).toBeGreaterThan(5);

    // On the chart: the run is one of its markers.
    await until('the run marked on the chart', async () =>
      ((await page.locator('.chart').getAttribute('data-run-ids')) ?? '').split(' ').includes(String(runId)),
    );
    await page.locator(`#run-${runId}`).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'cluster-1280.png'), fullPage: true });

    // The run's marker is reachable with the keyboard: Tab from the range picker lands on a marker, its tooltip shows.
    await page.getByRole('button', { name: '30 d', exact: true }).focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(
      () =>
        (document.activeElement as { className: string; getAttribute(n: string): string | null }).className +
        ' ' +
        document.activeElement.getAttribute('aria-label'),
    );
    expect(focused).toMatch(/^run-mark Run \d+: success, trigger api/);
    expect(await page.locator('.chart-tip').isVisible()).toBe(true);
    expect(await page.locator('.chart-tip').textContent()).toMatch(/^Run \d+: success/);
    await page.keyboard.press('Tab');

    // The dark scheme, for the eyes (screenshots).
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'cluster-1280-dark.png'), fullPage: true });
    await page.goto(`${daemon.url}/`);
    await page.locator('.member').first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'overview-1280-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });

    // The overview's last run.
    await page.goto(`${daemon.url}/`);
    const last = page.locator(`.card[data-cluster="main"] .last-run[data-run-id="${runId}"]`);
    await last.waitFor();
    expect(await last.locator('.badge.outcome').textContent()).toBe('success');
    expect(await last.locator('.reclaimed').textContent()).toBe(`reclaimed ${formatBytes(detail.reclaimedBytes)}`);
  });

  it('works on a phone-sized screen (390 px): nothing wider than the screen but the tables that scroll', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, shot] of [
      ['/', 'overview-390.png'],
      ['/#/clusters/main', 'cluster-390.png'],
    ] as const) {
      await page.goto(`${daemon.url}${path}`);
      await page.locator('.member').first().waitFor();
      await page.waitForTimeout(500);
      const tooWide = await page.evaluate(() =>
        (
          [...document.querySelectorAll('body *')] as {
            closest(s: string): unknown;
            getBoundingClientRect(): { right: number };
            tagName: string;
            className: string;
          }[]
        )
          .filter((el) => !el.closest('.table-wrap') && el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
          .map((el) => `${el.tagName.toLowerCase()}.${el.className}`),
      );
      expect(tooWide, path).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, shot), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('made no request outside the daemon, and logged no error (no CSP violation)', () => {
    expect(outside).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

describe('dashboard: false', () => {
  it('serves no page at /, the API still answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'defragd-nodash-'));
    try {
      const s = await startServe(
        dir,
        'off',
        `listen: 127.0.0.1:0\nstore: ":memory:"\ndashboard: false\nclusters:\n  - name: a\n    endpoints: [127.0.0.1:1]\n    dialTimeout: 200ms\n`,
      );
      try {
        const page = await fetch(`${s.url}/`);
        expect(page.status).toBe(404);
        expect(await page.json()).toEqual({ error: 'no such route: GET /' });
        expect((await getJson(`${s.url}/api/v1/clusters`)).status).toBe(200);
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
