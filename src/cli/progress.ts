/**
 * Progress for a run: on a terminal, a live line with the elapsed time while
 * a member defragments; otherwise one timestamped log line per event.
 */
import type { StepEvent } from '../domain/run.js';
import { formatDuration } from './format.js';
import { eventLine } from './printers/defrag.js';

export interface Progress {
  onEvent(e: StepEvent): void;
  close(): void;
}

export function createProgress(write: (s: string) => void, live: boolean, now: () => number = Date.now): Progress {
  let timer: NodeJS.Timeout | null = null;
  let liveText = '';
  let liveStart = 0;
  const clearLive = () => {
    if (timer) clearInterval(timer);
    timer = null;
    if (live && liveText) write('\r\x1b[K');
    liveText = '';
  };
  const draw = () => write(`\r\x1b[K${liveText} ${formatDuration(now() - liveStart)}`);
  return {
    onEvent(e) {
      const line = eventLine(e);
      if (!live) {
        if (line) write(`${new Date(now()).toISOString()} ${line}\n`);
        return;
      }
      // A member's own live line (its defrag, or a wait for it to answer again) keeps running through
      // the catch-up wait that follows; any other wait gets a live line of its own.
      if (e.type === 'member-waiting' && liveText) return;
      clearLive();
      if ((e.type === 'member-started' || e.type === 'member-waiting') && line) {
        liveText = `⟳ ${line}`;
        liveStart = now();
        draw();
        timer = setInterval(draw, 200);
        timer.unref();
        return;
      }
      if (line) write(`${line}\n`);
    },
    close: clearLive,
  };
}
