/**
 * Loads defragd's own etcd schema (proto/etcd.proto). The options keep 64-bit
 * integers as decimal strings (member IDs exceed 2^53) and enums as names.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// src/etcd/proto.ts and dist/etcd/proto.js are both two levels below the package root.
const PROTO_PATH = fileURLToPath(new URL('../../proto/etcd.proto', import.meta.url));

export type ServiceName = 'KV' | 'Maintenance' | 'Cluster' | 'Auth' | 'Lease';

export type ServiceCtor = grpc.ServiceClientConstructor;

let cached: Readonly<Record<ServiceName, ServiceCtor>> | null = null;

/**
 * The service constructors, parsed once per process: parsing the .proto
 * blocks the event loop for tens of milliseconds, too long to pay per client.
 * The result is immutable, so sharing it shares no state.
 */
export function loadServices(): Readonly<Record<ServiceName, ServiceCtor>> {
  cached ??= Object.freeze(parseServices());
  return cached;
}

function parseServices(): Record<ServiceName, ServiceCtor> {
  const definition = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition)['etcdserverpb'] as grpc.GrpcObject;
  const get = (name: ServiceName) => pkg[name] as ServiceCtor;
  return { KV: get('KV'), Maintenance: get('Maintenance'), Cluster: get('Cluster'), Auth: get('Auth'), Lease: get('Lease') };
}
