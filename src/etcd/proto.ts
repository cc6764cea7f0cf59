/**
 * Loads defragd's own etcd schema (proto/etcd.proto) into gRPC client
 * constructors. Messages come and go as plain objects: field names as in the
 * .proto (snake_case), 64-bit integers as decimal strings (member IDs exceed
 * 2^53), enums as names, bytes as Buffers, absent fields as their defaults.
 *
 * protobufjs does the parsing and the coding; the method table is built here
 * rather than by @grpc/proto-loader, which on top of protobufjs builds a full
 * descriptor of the file for each method (reflection that defragd never
 * serves): loading it and building those took about 50 ms of a quiet CLI start.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

// src/etcd/proto.ts and dist/etcd/proto.js are both two levels below the package root.
const PROTO_PATH = fileURLToPath(new URL('../../proto/etcd.proto', import.meta.url));
const PACKAGE = 'etcdserverpb';

export type ServiceName = 'KV' | 'Maintenance' | 'Cluster' | 'Auth' | 'Lease';
const SERVICES: readonly ServiceName[] = ['KV', 'Maintenance', 'Cluster', 'Auth', 'Lease'];

export type ServiceCtor = grpc.ServiceClientConstructor;

/** How a decoded message becomes a plain object (see the module comment). */
const AS_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

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
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  root.resolveAll();
  return Object.fromEntries(SERVICES.map((name) => [name, clientConstructor(root.lookupService(`${PACKAGE}.${name}`))])) as Record<
    ServiceName,
    ServiceCtor
  >;
}

function clientConstructor(service: protobuf.Service): ServiceCtor {
  const methods: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of service.methodsArray) {
    const request = coder(m.resolvedRequestType);
    const response = coder(m.resolvedResponseType);
    methods[m.name] = {
      path: `/${PACKAGE}.${service.name}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: request.encode,
      requestDeserialize: request.decode,
      responseSerialize: response.encode,
      responseDeserialize: response.decode,
    };
  }
  return grpc.makeGenericClientConstructor(methods, service.name);
}

function coder(type: protobuf.Type | null): { encode: (value: object) => Buffer; decode: (bytes: Buffer) => object } {
  if (type === null) throw new Error('proto/etcd.proto: a method names a message type that does not resolve');
  return {
    encode: (value) => {
      const bytes = type.encode(type.fromObject(value)).finish();
      // On Node, protobufjs writes into a Buffer already; anything else is wrapped, not copied.
      return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode: (bytes) => type.toObject(type.decode(bytes), AS_OBJECT),
  };
}
