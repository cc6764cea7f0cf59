// `make bench`'s start-up floor: a Node process that loads @grpc/grpc-js and opens one
// connection to the member given (host:port), then exits; with `--bare`, one that only
// opens a TCP connection. Started like defragd (node --import wire-probe.mjs), so the
// probe notes its first connection the same way.
const [target, mode] = process.argv.slice(2);
if (!target) {
  console.error('usage: node bench/startup-floor.mjs HOST:PORT [--bare]');
  process.exit(2);
}
if (mode === '--bare') {
  const net = await import('node:net');
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  net
    .connect(port, host)
    .on('connect', () => process.exit(0))
    .on('error', () => process.exit(1));
} else {
  const grpc = await import('@grpc/grpc-js');
  const channel = new grpc.Channel(target, grpc.credentials.createInsecure(), {});
  const check = () => {
    const state = channel.getConnectivityState(true);
    if (state === grpc.connectivityState.READY) process.exit(0);
    if (state === grpc.connectivityState.TRANSIENT_FAILURE) process.exit(1);
    channel.watchConnectivityState(state, Date.now() + 10_000, check);
  };
  check();
}
