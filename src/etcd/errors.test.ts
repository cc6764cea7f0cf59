import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AbortedError, ConnectionError, DeadlineError, EtcdError } from '../domain/errors.js';
import { classifyEtcdError, mapGrpcError } from './errors.js';

const serviceError = (code: grpc.status, details: string) =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });

describe('etcd errors are classified once, where they enter', () => {
  it.each([
    ['etcdserver: mvcc: database space exceeded', 'nospace'],
    ['etcdserver: rpc not supported for learner', 'learner'],
    ['etcdserver: mvcc: required revision has been compacted', 'compacted'],
    ['etcdserver: mvcc: required revision is a future revision', 'future-revision'],
    ['etcdserver: leader changed', 'leader-changed'],
    ['etcdserver: no leader', 'no-leader'],
    ['etcdserver: not leader', 'not-leader'],
    ['etcdserver: bad leader transferee', 'bad-transferee'],
    ['etcdserver: invalid auth token', 'invalid-token'],
    ['etcdserver: authentication failed, invalid user ID or password', 'auth-failed'],
    ['etcdserver: user name is empty', 'auth-required'],
    ['etcdserver: permission denied', 'permission-denied'],
    ['etcdserver: requested lease not found', 'lease-not-found'],
    ['etcdserver: request timed out', 'server-timeout'],
    ['etcdserver: corrupt cluster', 'corrupt'],
    ['etcdserver: something new', 'other'],
  ])('%s → %s', (details, reason) => {
    expect(classifyEtcdError(details)).toBe(reason);
    const err = mapGrpcError('http://127.0.0.1:2379', 'Put', serviceError(grpc.status.UNKNOWN, details), 5_000);
    expect(err).toBeInstanceOf(EtcdError);
    expect((err as EtcdError).reason).toBe(reason);
  });

  it("CANCELLED is an interruption only when we aborted the call; cancelled by anything else, the call's fate is unknown, as with a lost connection", () => {
    const cancelled = serviceError(grpc.status.CANCELLED, 'context canceled');
    expect(mapGrpcError('http://127.0.0.1:2379', 'MoveLeader', cancelled, 5_000, { abortedByUs: true })).toBeInstanceOf(AbortedError);
    const other = mapGrpcError('http://127.0.0.1:2379', 'Defragment', cancelled, 5_000);
    expect(other).toBeInstanceOf(ConnectionError);
    expect(other.message).toBe('http://127.0.0.1:2379: Defragment was cancelled, not by defragd (context canceled)');
  });

  it("CANCELLED after the call's deadline is the deadline: etcd resets the stream when its side of the deadline passes, at times before our own timer", () => {
    const reset = serviceError(grpc.status.CANCELLED, 'Call cancelled');
    const err = mapGrpcError('http://127.0.0.1:2379', 'Defragment', reset, 20, { deadlinePassed: true });
    expect(err).toBeInstanceOf(DeadlineError);
    expect(err.message).toBe('http://127.0.0.1:2379: Defragment got no answer within 20ms (deadline exceeded; etcd cancelled the call)');
    // Our own abort stays an interruption, deadline or not.
    expect(mapGrpcError('http://127.0.0.1:2379', 'Defragment', reset, 20, { abortedByUs: true, deadlinePassed: true })).toBeInstanceOf(
      AbortedError,
    );
  });

  it('a refused connection is a ConnectionError, not an etcd error', () => {
    const err = mapGrpcError(
      'http://127.0.0.1:1',
      'Status',
      serviceError(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'),
      5_000,
    );
    expect(err).toBeInstanceOf(ConnectionError);
  });

  it('a permission error on Defragment names the root role', () => {
    const err = mapGrpcError(
      'http://127.0.0.1:2379',
      'Defragment',
      serviceError(grpc.status.PERMISSION_DENIED, 'etcdserver: permission denied'),
      5_000,
    );
    expect(err.message).toMatch(/Defragment needs a user with the root role/);
  });
});
