/**
 * Which process wrote something (a run in the store, the store's lock file),
 * told apart from a later process that happens to get the same pid: in a
 * container every incarnation of the daemon is pid 1. A process is its pid
 * plus its start: the kernel's boot id and the process's start time in clock
 * ticks since boot (/proc/<pid>/stat, field 22). Where /proc is not there,
 * the start is null and the pid alone decides, as before.
 */
import { readFileSync } from 'node:fs';

/** "<boot id>:<start ticks>" of a live process; null when it cannot be read (no /proc, or gone). */
export function processStart(pid: number): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[19];
    return boot && ticks ? `${boot}:${ticks}` : null;
  } catch {
    return null;
  }
}

/** This process's start, read once. */
export const OWN_START: string | null = processStart(process.pid);

/** Signal 0 tests for the process without touching it; EPERM means it exists under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process that recorded (`pid`, `start`) still runs: a process with that pid exists and, when
 * both starts are known, it is the same one (not a later process given the same pid, e.g. pid 1 in a
 * restarted container).
 *
 * @example stillRunning(1, 'f3c…:4242') // false after the container restarted
 */
export function stillRunning(
  pid: number,
  start: string | null,
  alive: (pid: number) => boolean = processAlive,
  startOf: (pid: number) => string | null = processStart,
): boolean {
  if (!alive(pid)) return false;
  if (start === null) return true;
  const now = startOf(pid);
  return now === null || now === start;
}
