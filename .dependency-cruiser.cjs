/**
 * The floors of defragd's architecture, checked by `make lint-imports` (and so
 * by `make test`, before vitest). Bottom to top, each may import:
 *
 *   domain    nothing outside domain, no node:*
 *   etcd      domain                      policy    domain
 *   observe   domain, etcd                lock      domain, etcd
 *   planner   domain, policy; no node:* (pure)
 *   executor  domain, planner, policy types; not etcd
 *   store     domain (and node:*, better-sqlite3): the run history
 *   app       everything but cli          index.ts  everything but cli
 *   cli       anything in src; and nothing else in src imports cli
 *   web/      (the dashboard, a browser bundle) src/domain, and the API's
 *             shapes as types only; nothing imports web/
 *
 * Each rule below is one sentence of that design; its `comment` is what a
 * failing build prints next to the offending import.
 *
 * Choices worth knowing:
 * - Type-only imports count (tsPreCompilationDeps: true): `import type` is
 *   still a dependency of the design, even though it vanishes from the JS.
 * - The layer rules judge production code. Unit tests beside their modules
 *   (`*.test.ts` under src/) are test code: like test/, they may use the
 *   builders in test/ and dev/ and reach any layer they need to exercise.
 * - "src" means the production tree; imports of npm packages are not judged
 *   here (only node:* built-ins, where a layer must stay pure).
 */

/** Unit tests anywhere: `foo.test.ts`. */
const TEST_FILE = '\\.test\\.ts$';

// ---------------------------------------------------------------------------
// KNOWN VIOLATIONS: removed by the executor refactor.
//
// Imports that break a rule today and are allowed, one edge at a time, until
// the refactor lands. Each entry exempts exactly one importing file → one
// imported file from one rule; any other import that breaks the rule still
// fails. When the refactor removes an import, delete its line here (an entry
// whose import is gone exempts nothing, so a stale line is harmless but
// misleading). When the list is empty, delete it and its use below.
// ---------------------------------------------------------------------------
const KNOWN_VIOLATIONS = [
  // None. Add { rule, from, to } entries only for a violation a change is about to remove.
];

/** `a/b.ts` → `^a/b\.ts$` */
const exactly = (path) => `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;

/**
 * Applies KNOWN_VIOLATIONS to the rules: a rule with exceptions becomes the
 * rule for every other importing file, plus one copy per excepted importing
 * file that allows only that file's listed targets.
 */
function withKnownViolations(rules) {
  return rules.flatMap((rule) => {
    const known = KNOWN_VIOLATIONS.filter((v) => v.rule === rule.name);
    if (known.length === 0) return [rule];
    const fromFiles = [...new Set(known.map((v) => v.from))];
    const rest = {
      ...rule,
      from: { ...rule.from, pathNot: [].concat(rule.from.pathNot ?? [], fromFiles.map(exactly)) },
    };
    const perFile = fromFiles.map((file) => ({
      ...rule,
      from: { path: exactly(file) },
      to: {
        ...rule.to,
        pathNot: [].concat(
          rule.to.pathNot ?? [],
          known.filter((v) => v.from === file).map((v) => exactly(v.to)),
        ),
      },
    }));
    return [rest, ...perFile];
  });
}

/** Production files of one layer: `layer('planner')`. */
const layer = (name) => ({ path: `^src/${name}/`, pathNot: TEST_FILE });

/** Any file under src/ outside the given layers (src/index.ts and src/version.ts included). */
const srcOutside = (...names) => ({ path: '^src/', pathNot: `^src/(${names.join('|')})/` });

/** Node's built-in modules (`node:fs`, `fs`, ...). */
const NODE_BUILTIN = { dependencyTypes: ['core'] };

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: withKnownViolations([
    // --- domain: the floor -------------------------------------------------
    {
      name: 'domain-imports-only-domain',
      comment:
        'src/domain/ is the floor: plain types, errors and pure formatting. It imports nothing from src/ outside src/domain/; whatever it needs belongs in domain.',
      severity: 'error',
      from: layer('domain'),
      to: srcOutside('domain'),
    },
    {
      name: 'domain-no-node-builtins',
      comment:
        'src/domain/ is pure and runs anywhere: no node:* imports. Effects live in the layers above (etcd, observe, executor, lock, cli).',
      severity: 'error',
      from: layer('domain'),
      to: NODE_BUILTIN,
    },

    // --- etcd, policy: right above domain ----------------------------------
    {
      name: 'etcd-imports-only-domain',
      comment: 'src/etcd/ is the wire client. It may import src/domain/ only (it maps etcd errors to domain errors); nothing above it.',
      severity: 'error',
      from: layer('etcd'),
      to: srcOutside('etcd', 'domain'),
    },
    {
      name: 'policy-imports-only-domain',
      comment: 'src/policy/ holds the rules (CEL), thresholds and their validation. It may import src/domain/ only.',
      severity: 'error',
      from: layer('policy'),
      to: srcOutside('policy', 'domain'),
    },

    // --- observe -----------------------------------------------------------
    {
      name: 'observe-imports-only-domain-etcd',
      comment:
        'src/observe/ turns etcd into a ClusterSnapshot. It may import src/domain/ and src/etcd/ only; it does not decide (planner) or act (executor).',
      severity: 'error',
      from: layer('observe'),
      to: srcOutside('observe', 'domain', 'etcd'),
    },

    // --- planner: pure -----------------------------------------------------
    {
      name: 'planner-imports-only-domain-policy',
      comment:
        'src/planner/ is PURE: ClusterSnapshot + Policy → Plan. It may import src/domain/ and src/policy/ only: no etcd, no observe, nothing that does I/O. Pass data in instead.',
      severity: 'error',
      from: layer('planner'),
      to: srcOutside('planner', 'domain', 'policy'),
    },
    {
      name: 'planner-no-node-builtins',
      comment: 'src/planner/ is PURE: no node:* imports (no I/O, no clock, no timers). The caller observes and passes the results in.',
      severity: 'error',
      from: layer('planner'),
      to: NODE_BUILTIN,
    },

    // --- executor ----------------------------------------------------------
    {
      name: 'executor-not-etcd',
      comment:
        "src/executor/ must not import src/etcd/: it acts through the narrow interface it is given (deps), not the wire client. (Today's exceptions: KNOWN_VIOLATIONS in .dependency-cruiser.cjs.)",
      severity: 'error',
      from: layer('executor'),
      to: { path: '^src/etcd/' },
    },
    {
      name: 'executor-imports-only-domain-planner-policy',
      comment:
        'src/executor/ may import src/domain/ and src/planner/ (and src/policy/ for types): it asks the planner and does what it is told. Not observe, lock, app or cli.',
      severity: 'error',
      from: layer('executor'),
      // etcd has its own rule above (with its known violations).
      to: srcOutside('executor', 'domain', 'planner', 'policy', 'etcd'),
    },
    {
      name: 'executor-policy-types-only',
      comment: "src/executor/ may use src/policy/ for its types only (`import type`); evaluating rules is the planner's job.",
      severity: 'error',
      from: layer('executor'),
      to: { path: '^src/policy/', dependencyTypesNot: ['type-only'] },
    },

    // --- lock --------------------------------------------------------------
    {
      name: 'lock-imports-only-domain-etcd',
      comment: 'src/lock/ (the cluster lock) may import src/domain/ and src/etcd/ only.',
      severity: 'error',
      from: layer('lock'),
      to: srcOutside('lock', 'domain', 'etcd'),
    },

    // --- store -------------------------------------------------------------
    {
      name: 'store-imports-only-domain',
      comment:
        'src/store/ (the SQLite run history) may import src/domain/ only: it records RunReports, StepEvents and ClusterSnapshots as data; it does not observe, plan or act. app and cli import it.',
      severity: 'error',
      from: layer('store'),
      to: srcOutside('store', 'domain'),
    },

    // --- serve (the daemon) -------------------------------------------------
    {
      name: 'serve-scheduler-pure',
      comment:
        "src/serve/schedule.ts and window.ts decide when runs start: PURE, like the planner. They may import src/domain/, each other and serve's types (types.ts) only: the daemon passes the clock, the randomness and the cluster's state in.",
      severity: 'error',
      from: { path: '^src/serve/(schedule|window)\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/domain/', '^src/serve/(schedule|window|types)\\.ts$'] },
    },
    {
      name: 'serve-scheduler-no-node-builtins',
      comment: 'src/serve/schedule.ts and window.ts are PURE: no node:* imports (no I/O, no clock, no timers).',
      severity: 'error',
      from: { path: '^src/serve/(schedule|window)\\.ts$' },
      to: NODE_BUILTIN,
    },
    {
      name: 'serve-http-through-the-view',
      comment:
        'src/serve/http.ts (the only socket code) reaches the daemon through its view interface (DaemonView in types.ts), the JSON shapes (cluster-json.ts, samples.ts) and the Host-header policy (hosts.ts), never the Daemon class, the store, etcd or a run: so the API is tested without a socket, a cluster or a daemon.',
      severity: 'error',
      from: { path: '^src/serve/http\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/domain/', '^src/serve/(types|cluster-json|samples|hosts)\\.ts$'] },
    },

    // --- app, cli, index ---------------------------------------------------
    {
      name: 'app-not-cli',
      comment:
        'src/app/ is the application layer: it may import every layer below it, never src/cli/. The CLI calls the app, not the other way round.',
      severity: 'error',
      from: layer('app'),
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-cli',
      comment:
        'src/cli/ is the top (commands, printers, flags, the only process.exit). Nothing in src/ outside src/cli/ imports it; if a library user needs it too, move it down (domain, app).',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', TEST_FILE] },
      to: { path: '^src/cli/' },
    },
    {
      name: 'index-not-cli',
      comment:
        "src/index.ts is the library's face: it may export any layer except src/cli/ (a library must not pull in commander, printers or process.exit).",
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { path: '^src/cli/' },
    },

    // --- web: the dashboard's page (bundled by esbuild into dist/web) --------
    {
      name: 'web-reads-only-the-api',
      comment:
        "web/ (the dashboard) runs in a browser and reads only the JSON API: from src/ it may bundle src/domain/ (pure formatting) and take the API's shapes as types (`import type`), nothing else.",
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/', pathNot: '^src/domain/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'web-no-node-builtins',
      comment: 'web/ runs in a browser: no node:* imports.',
      severity: 'error',
      from: { path: '^web/' },
      to: NODE_BUILTIN,
    },
    {
      name: 'nothing-imports-web',
      comment: 'web/ is the page, built apart (scripts/build-web.mjs); the daemon serves its built files and imports none of it.',
      severity: 'error',
      from: { path: '^(src|dev|test)/' },
      to: { path: '^web/' },
    },

    // --- the trees around src ----------------------------------------------
    {
      name: 'src-not-test-dev-bench-scripts',
      comment:
        'Production code under src/ never imports test/, dev/, bench/ or scripts/: they are not shipped. (Unit tests beside their modules, *.test.ts, may use test/ and dev/.)',
      severity: 'error',
      from: { path: '^src/', pathNot: TEST_FILE },
      to: { path: '^(test|dev|bench|scripts)/' },
    },
    {
      name: 'dev-imports-only-src',
      comment:
        'dev/ (the etcd harness and workload) may import src/, not test/, bench/ or scripts/: test/ builds on dev/, not the other way round.',
      severity: 'error',
      from: { path: '^dev/', pathNot: TEST_FILE },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'test-imports-only-src-dev',
      comment: 'Tests (test/ and *.test.ts) may import src/, dev/ and test/, not bench/ or scripts/.',
      severity: 'error',
      from: { path: ['^test/', TEST_FILE] },
      to: { path: '^(bench|scripts)/' },
    },

    // --- no cycles ---------------------------------------------------------
    {
      name: 'no-cycles-in-src',
      comment:
        'No circular imports within src/: a cycle makes two modules one, hides which layer depends on which and makes load order matter.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', circular: true },
    },

    // --- the check itself --------------------------------------------------
    {
      name: 'resolvable',
      comment:
        'Every import must resolve to a file or package. An import this check cannot resolve is one it cannot judge, so the other rules would pass it silently.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ]),

  options: {
    // Type-only imports are dependencies of the design too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    // Packages' subpath exports (`hono/streaming`, `@hono/node-server/serve-static`)
    // resolve only through package.json `exports` and its conditions; without
    // these the `resolvable` rule reports them as unresolvable.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    // NodeNext's `import './x.js'` resolves to ./x.ts (dependency-cruiser
    // does this itself for TypeScript sources; the `resolvable` rule would
    // say so if it stopped).
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
