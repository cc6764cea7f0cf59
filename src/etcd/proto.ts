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

/** Loads the schema; cheap enough to call per cluster client, and keeps no module state. */
export function loadServices(): Record<ServiceName, ServiceCtor> {
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
