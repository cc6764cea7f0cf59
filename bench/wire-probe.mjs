// Preloaded into the defragd process the benchmark starts (node --import): notes,
// on stderr, when the process opens its first connection (its first byte on the
// wire: start-up ends there) and when it exits, on the clock the benchmark uses.
import net from 'node:net';
import { writeSync } from 'node:fs';

const now = () => performance.timeOrigin + performance.now();
const note = (o) => writeSync(2, `#probe ${JSON.stringify(o)}\n`);
const connect = net.Socket.prototype.connect;
let first = true;
net.Socket.prototype.connect = function (...args) {
  if (first) {
    first = false;
    note({ firstConnect: now() });
  }
  return connect.apply(this, args);
};
process.on('exit', () => note({ exit: now() }));
