/**
 * The CLI as a function: argv in, exit code out, all output through CliIO.
 * main.ts wires it to the process; tests call it directly.
 */
import { Command, CommanderError } from 'commander';
import { DefragdError, messageOf } from '../domain/errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import type { CliIO } from './io.js';
// Each command module holds its flags; what its action needs (gRPC, the planner, the printers,
// SQLite) it imports when it runs, so --help, --version and a usage error load none of it.
import { statusCommand } from './commands/status.js';
import { defragCommand } from './commands/defrag.js';
import { alarmCommand } from './commands/alarm.js';
import { lastCommand } from './commands/last.js';
import { historyCommand } from './commands/history.js';
import { serveCommand } from './commands/serve.js';
import { VERSION } from '../version.js';

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  let code: number = EXIT.OK;
  const done = (c: number) => {
    code = c;
  };
  const output = {
    writeOut: (s: string) => io.stdout(s),
    writeErr: (s: string) => io.stderr(s),
    outputError: (s: string, write: (s: string) => void) => write(`defragd: ${s.replace(/^error: /, '')}`),
  };
  const program = new Command('defragd')
    .description('Keeps etcd v3 clusters defragmented safely.')
    .version(VERSION, '--version')
    .showSuggestionAfterError(true)
    .configureOutput(output)
    .exitOverride();
  const commands = [
    statusCommand(io, done),
    defragCommand(io, done),
    alarmCommand(io, done),
    lastCommand(io, done),
    historyCommand(io, done),
    serveCommand(io, done),
  ];
  for (const c of commands) {
    c.exitOverride().configureOutput(output);
    program.addCommand(c);
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.USAGE;
    }
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; commander has already printed its one line otherwise.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    // The same variables and words as the --debug flag's own resolution (DEFRAGD_, then ETCDCTL_).
    const debugEnv = io.env['DEFRAGD_DEBUG'] || io.env['ETCDCTL_DEBUG'] || '';
    const debug = argv.includes('--debug') || /^(1|true|yes|on)$/i.test(debugEnv);
    io.stderr(`defragd: ${messageOf(err)}\n`);
    if (debug && err instanceof Error)
      io.stderr(`${err.stack ?? ''}\n${err.cause ? `cause: ${String((err.cause as Error).stack ?? err.cause)}\n` : ''}`);
    else if (!(err instanceof DefragdError)) io.stderr('defragd: this is a bug in defragd; run with --debug for the stack trace\n');
    return exitCodeFor(err);
  }
}
