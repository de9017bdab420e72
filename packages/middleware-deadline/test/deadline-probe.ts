import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  create,
  createFileRegistry,
  type DescMethodUnary,
  fromBinary,
  toBinary,
} from '@bufbuild/protobuf';
import {
  DoubleValueSchema,
  type EmptySchema,
  FileDescriptorProtoSchema,
  file_google_protobuf_empty,
  file_google_protobuf_wrappers,
} from '@bufbuild/protobuf/wkt';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { PYTHON } from '@switchyard/testing';

/**
 * DeadlineProbe.Remaining(google.protobuf.Empty) → google.protobuf.DoubleValue: the milliseconds
 * a server has left before the call's deadline, by its own reading of grpc-timeout (-1: none).
 * Built from well-known types so foreign servers need no generated code.
 */
const PATH = '/switchyard.deadline.test.DeadlineProbe/Remaining';

/** The probe for nice-grpc clients. */
export const DeadlineProbe = {
  remaining: {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (_: Record<string, never>) => Buffer.alloc(0),
    requestDeserialize: (_: Buffer): Record<string, never> => ({}),
    responseSerialize: (ms: number) =>
      Buffer.from(toBinary(DoubleValueSchema, create(DoubleValueSchema, { value: ms }))),
    responseDeserialize: (bytes: Buffer) => fromBinary(DoubleValueSchema, bytes).value,
  },
} as const;

const remainingMethod = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'switchyard/deadline/test/probe.proto',
    package: 'switchyard.deadline.test',
    syntax: 'proto3',
    dependency: ['google/protobuf/empty.proto', 'google/protobuf/wrappers.proto'],
    service: [
      {
        name: 'DeadlineProbe',
        method: [
          {
            name: 'Remaining',
            inputType: '.google.protobuf.Empty',
            outputType: '.google.protobuf.DoubleValue',
          },
        ],
      },
    ],
  }),
  (file) =>
    ({
      'google/protobuf/empty.proto': file_google_protobuf_empty,
      'google/protobuf/wrappers.proto': file_google_protobuf_wrappers,
    })[file],
).getService('switchyard.deadline.test.DeadlineProbe')!.methods[0] as DescMethodUnary<
  typeof EmptySchema,
  typeof DoubleValueSchema
>;

/** The probe served by connect-node over cleartext HTTP/2, reporting `context.timeoutMs()`. */
export async function startConnectProbe() {
  const server = http2.createServer(
    connectNodeAdapter({
      grpc: true,
      grpcWeb: false,
      connect: false,
      routes: (router) =>
        router.rpc(remainingMethod, async (_request, context) =>
          create(DoubleValueSchema, { value: context.timeoutMs() ?? -1 }),
        ),
    }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    stop: () => {
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const SCRIPT = fileURLToPath(new URL('deadline_probe.py', import.meta.url));

/** The probe served by Python grpcio in a child process, reporting `context.time_remaining()`. */
export async function startPythonProbe() {
  // stdin stays an open pipe: the script exits when it closes.
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await Promise.race([
    new Promise<string>((resolve) =>
      createInterface({ input: child.stdout }).once('line', resolve),
    ),
    exited.then(() => {
      throw new Error(`${SCRIPT} exited before listening`);
    }),
  ]);
  return {
    address: `127.0.0.1:${Number(line)}`,
    stop: () => {
      child.stdin.end();
      return exited;
    },
  };
}
