import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { withInboundCall } from '@switchyard/nice-grpc';
import { createTestClient, startServer, TestRequest } from '@switchyard/testing';
import type { ClientMiddleware, ServerMiddleware } from 'nice-grpc-common';

/** The calls the middleware scenario makes, on a client of one variant. */
export interface Caller {
  /** One unary call; `onMessage` when its response arrives. */
  unary(onMessage: () => void): Promise<void>;
  /** One server-streaming call, read to its end unless `signal` aborts; `onMessage` for each response. */
  serverStream(onMessage: () => void, signal: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * One client + server stack measured by the middleware scenario. Its server and its client each
 * run in a process of their own (src/hosts/middleware-*.ts), so that process-wide state — an
 * OpenTelemetry SDK, prom-client's registry, async hooks — belongs to this variant alone.
 */
export interface Variant {
  name: string;
  /** The variant whose cost this one is compared with. */
  baseline: string;
  /** Runs once in each of the variant's processes before `serve` or `connect`. */
  setup?(): Promise<void> | void;
  /** Starts the server; resolves to its `127.0.0.1:<port>`. */
  serve(): Promise<string>;
  connect(address: string): Caller;
}

/** Messages per server-streaming call. */
export const STREAM_MESSAGES = 1_000;
const UNARY_REQUEST = TestRequest.fromPartial({ payload: 'bench' });
const STREAM_REQUEST = TestRequest.fromPartial({
  payload: 'bench',
  responseCount: STREAM_MESSAGES,
});

export { STREAM_REQUEST, UNARY_REQUEST };

/** What a nice-grpc variant adds to the bare TestService client and server. */
export interface NiceGrpcStack {
  name: string;
  baseline: string;
  setup?(): Promise<void> | void;
  server?: () => ServerMiddleware[];
  client?: () => ClientMiddleware[];
  /** Options of every call, e.g. `{ deadline: 10_000 }`; a function when they hold a Date. */
  callOptions?: () => object;
  /** mTLS with the PKI the bench generated (see {@link benchPki}). */
  mtls?: boolean;
  /**
   * Create the server with core's `withInboundCall()`, as the READMEs of Switchyard's server
   * middleware ask (deadline and identity need it; the call scope, metrics and tracing use it to
   * see the deadline and to enter the scope once per call). nice-grpc's own packages go without:
   * they read nothing from it, and it enters an AsyncLocalStorage per call.
   */
  inboundCall?: boolean;
}

/** A variant built on @switchyard/testing's nice-grpc TestService server and client. */
export function niceGrpcVariant(stack: NiceGrpcStack): Variant {
  const {
    name,
    baseline,
    setup,
    server = () => [],
    client = () => [],
    callOptions,
    mtls = false,
    inboundCall = false,
  } = stack;
  return {
    name,
    baseline,
    setup,
    async serve() {
      const running = await startServer({
        middleware: server(),
        serverOptions: inboundCall ? withInboundCall() : undefined,
        credentials: mtls ? benchPki().server : undefined,
      });
      return running.address;
    },
    connect(address) {
      const { client: testClient, close } = createTestClient(address, {
        middleware: client(),
        credentials: mtls ? benchPki().client : undefined,
      });
      const options = callOptions ?? (() => ({}));
      return {
        async unary(onMessage) {
          await testClient.unary(UNARY_REQUEST, options());
          onMessage();
        },
        async serverStream(onMessage, signal) {
          for await (const _ of testClient.serverStream(STREAM_REQUEST, { ...options(), signal }))
            onMessage();
        },
        close,
      };
    },
  };
}

/** Where the bench wrote its PKI's PEM files: ca, server and client certificates and keys. */
export const PKI_DIR_VARIABLE = 'SWITCHYARD_BENCH_PKI';

let pki: { server: ServerCredentials; client: ChannelCredentials } | undefined;

/** mTLS credentials from the PEM files in `$SWITCHYARD_BENCH_PKI`, shared by both processes. */
export function benchPki(): { server: ServerCredentials; client: ChannelCredentials } {
  if (pki) return pki;
  const dir = process.env[PKI_DIR_VARIABLE];
  if (!dir) throw new Error(`${PKI_DIR_VARIABLE} is not set`);
  const read = (file: string) => readFileSync(join(dir, file));
  pki = {
    server: ServerCredentials.createSsl(
      read('ca.pem'),
      [{ cert_chain: read('server.pem'), private_key: read('server-key.pem') }],
      true,
    ),
    client: ChannelCredentials.createSsl(
      read('ca.pem'),
      read('client-key.pem'),
      read('client.pem'),
    ),
  };
  return pki;
}
