/**
 * The import-boundary rules (.dependency-cruiser.cjs) can fail: run against a
 * small generated tree that breaks some of them, they name exactly those
 * imports, and they leave alone what they allow (a unit test's builders).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';

const config = createRequire(import.meta.url)('../.dependency-cruiser.cjs') as IConfiguration;

const FIXTURE: Record<string, string> = {
  'src/domain/plan.ts': 'export interface Plan { steps: string[] }\n',
  // broken: domain reaches up into etcd (type only still counts)
  'src/domain/format.ts': "import type { EtcdClient } from '../etcd/client.js';\nexport type F = EtcdClient;\n",
  'src/etcd/client.ts': "import type { Plan } from '../domain/plan.js';\nexport interface EtcdClient { plan?: Plan }\n",
  'src/etcd/options.ts': 'export interface ConnectionOptions { endpoints: string[] }\n',
  'src/etcd/metrics.ts': 'export const METRIC = 1;\n',
  // broken: the planner does I/O
  'src/planner/plan.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
  // allowed: a unit test beside its module uses node:* and test/'s builders
  'src/planner/plan.test.ts':
    "import { readFileSync } from 'node:fs';\nimport { aPlan } from '../../test/builders.js';\nexport const t = [readFileSync, aPlan];\n",
  // broken: the executor reaches for the wire client instead of its port (type only still counts)
  'src/executor/execute.ts': "import type { ConnectionOptions } from '../etcd/options.js';\nexport type E = ConnectionOptions;\n",
  // broken: a cycle
  'src/observe/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
  'src/observe/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
  // broken: the app imports the CLI
  'src/app/defragment.ts': "import { printPlan } from '../cli/printer.js';\nexport const run = printPlan;\n",
  'src/cli/printer.ts': 'export const printPlan = (): string => "";\n',
  // allowed: the store uses node:* and records domain types; broken: it reaches into the executor
  'src/store/store.ts':
    "import { statSync } from 'node:fs';\nimport type { Plan } from '../domain/plan.js';\nimport type { E } from '../executor/execute.js';\nexport type S = [Plan, E, typeof statSync];\n",
  // the dashboard's page: allowed, the API's shapes as types and domain's formatting; broken: a value from the daemon, node:*
  'src/serve/samples.ts': 'export const RANGES = 1;\n',
  'src/serve/daemon.ts': 'export class Daemon {}\n',
  // allowed: the scheduler uses the domain and the window code; broken: it reads the clock's module and the wire client
  'src/serve/window.ts': 'export const inWindow = (): boolean => true;\n',
  'src/serve/schedule.ts':
    "import { setTimeout } from 'node:timers/promises';\nimport type { Plan } from '../domain/plan.js';\nimport { inWindow } from './window.js';\nimport type { EtcdClient } from '../etcd/client.js';\nexport type Sch = [Plan, EtcdClient, typeof inWindow, typeof setTimeout];\n",
  // allowed: the API reads the JSON shapes; broken: it reaches for the Daemon class
  'src/serve/http.ts':
    "import { RANGES } from './samples.js';\nimport { Daemon } from './daemon.js';\nexport const h = [RANGES, Daemon];\n",
  'web/main.ts':
    "import type { Plan } from '../src/domain/plan.js';\nimport type { S } from '../src/store/store.js';\nimport { RANGES } from '../src/serve/samples.js';\nimport { readFileSync } from 'node:fs';\nexport const w = [RANGES, readFileSync];\nexport type W = [Plan, S];\n",
  'test/builders.ts': "import type { Plan } from '../src/domain/plan.js';\nexport const aPlan = (): Plan => ({ steps: [] });\n",
};

let dir: string;
let result: ICruiseResult;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-boundaries-'));
  for (const [path, text] of Object.entries(FIXTURE)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const { forbidden, options } = config;
  const reported = await cruise(['src', 'test', 'web'], {
    ...options,
    tsConfig: undefined,
    baseDir: dir,
    validate: true,
    ruleSet: { forbidden },
  });
  result = reported.output as ICruiseResult;
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('import boundaries', () => {
  it('name exactly the imports that break a rule', () => {
    const found = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
    expect(found).toEqual(
      [
        'app-not-cli: src/app/defragment.ts → src/cli/printer.ts',
        'domain-imports-only-domain: src/domain/format.ts → src/etcd/client.ts',
        'executor-not-etcd: src/executor/execute.ts → src/etcd/options.ts',
        'no-cycles-in-src: src/observe/a.ts → src/observe/b.ts',
        'only-cli-imports-cli: src/app/defragment.ts → src/cli/printer.ts',
        'planner-no-node-builtins: src/planner/plan.ts → fs',
        'serve-http-through-the-view: src/serve/http.ts → src/serve/daemon.ts',
        'serve-scheduler-no-node-builtins: src/serve/schedule.ts → timers/promises',
        'serve-scheduler-pure: src/serve/schedule.ts → src/etcd/client.ts',
        'store-imports-only-domain: src/store/store.ts → src/executor/execute.ts',
        'web-no-node-builtins: web/main.ts → fs',
        'web-reads-only-the-api: web/main.ts → src/serve/samples.ts',
      ].sort(),
    );
  });
});
