/** `defragd history`: the runs recorded with `defrag --store`, newest first. */
import { accessSync, constants, statSync } from 'node:fs';
import { Command } from 'commander';
import { StoreError } from '../../store/errors.js';
import { UsageError } from '../../domain/errors.js';
import { DEFAULT_RUNS_LIMIT } from '../../store/types.js';
import { EnvOption, sourceOf, withEnv } from '../config/env.js';
import { EXIT } from '../exit-codes.js';
import type { CliIO } from '../io.js';

/** More runs than this in one listing is a report, not a look: use -w json and a query. */
export const MAX_HISTORY_LIMIT = 10_000;

export function historyCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('history').description('list the runs recorded with defrag --store, newest first');
  cmd.addOption(new EnvOption('--store <file>', 'the history file defrag --store writes (never created here)', ['DEFRAGD_STORE']));
  cmd.addOption(new EnvOption('--cluster-name <name>', 'only the runs recorded under this --store-cluster name', []));
  cmd.addOption(new EnvOption('--limit <n>', `at most this many runs (1-${MAX_HISTORY_LIMIT})`, []).default(String(DEFAULT_RUNS_LIMIT)));
  cmd.addOption(
    new EnvOption('-w, --write-out <format>', 'output format: table or json', ['DEFRAGD_WRITE_OUT', 'ETCDCTL_WRITE_OUT']).default('table'),
  );
  cmd.addOption(new EnvOption('--debug', 'print stack traces of errors', ['DEFRAGD_DEBUG']));
  cmd.action(async () => {
    const opts = withEnv(cmd, io.env);
    const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
    const path = str('store');
    if (path === undefined || path === '') throw new UsageError('history needs --store FILE (the file defrag --store writes)');
    const limitText = str('limit') ?? String(DEFAULT_RUNS_LIMIT);
    const limit = /^\s*\d+\s*$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_HISTORY_LIMIT))
      throw new UsageError(`${sourceOf(opts, 'limit')}: expected a whole number from 1 to ${MAX_HISTORY_LIMIT}, got "${limitText}"`);
    const writeOut = str('writeOut') ?? 'table';
    if (writeOut !== 'table' && writeOut !== 'json')
      throw new UsageError(`${sourceOf(opts, 'writeOut')}: unknown format "${writeOut}" (use table or json)`);

    // SQLite (and the table printer) are loaded only by the commands that use them.
    const [{ openStore }, { printHistory }] = await Promise.all([import('../../store/index.js'), import('../printers/history.js')]);
    const store = openForReading(openStore, path, io);
    try {
      io.stdout(printHistory(store.runs({ cluster: str('clusterName'), limit }), writeOut));
    } finally {
      store.close();
    }
    done(EXIT.OK);
  });
  return cmd;
}

/**
 * The store as it is, for reading: opened as usual (which also closes runs whose process died), or,
 * where this user or the file system cannot write (a read-only mount, a copy), read without writing.
 */
function openForReading(open: typeof import('../../store/index.js').openStore, path: string, io: CliIO) {
  try {
    return open(path, { mustExist: true });
  } catch (err) {
    if (!(err instanceof StoreError) || !/not writable|cannot be opened/.test(err.message) || !readable(path)) throw err;
    const store = open(path, { readOnly: true });
    if (nonEmpty(`${path}-wal`))
      io.stderr(`defragd: note: ${path} cannot be written here; runs recorded since its last checkpoint (in ${path}-wal) are not shown\n`);
    return store;
  }
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function nonEmpty(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}
