import { delay } from 'abort-controller-x';

/**
 * The TestService semantics, shared by the nice-grpc fixture and the
 * connect-node peer so the two cannot drift. Each framework adapts its call
 * context to a {@link CallEnvironment}; everything a request asks for (delays,
 * failures, filler, echoed metadata, stream shapes) is decided here. The
 * Python peer (python/peer.py) re-implements this file; the cross-peer tests
 * hold it to the same answers.
 */

/** The request fields the behaviour reads; both generated `TestRequest` types have them. */
export interface TestRequestFields {
  payload: string;
  delayMs: number;
  statusCode: number;
  statusMessage: string;
  responseSize: number;
  responseCount: number;
  echoMetadata: readonly string[];
}

/** A response as plain fields, accepted by both generated `TestResponse` types. */
export interface TestResponseFields {
  backend: string;
  payload: string;
  sequence: number;
  receivedCount: number;
  metadata: Record<string, string>;
  filler: Uint8Array;
}

/** What a server framework tells the behaviour about one call. */
export interface CallEnvironment {
  /** Name of the serving backend, reported in every response. */
  backend: string;
  /** Aborted when the call is cancelled or its deadline passes; ends delays early. */
  signal: AbortSignal;
  /** The values of a text metadata key joined with ", ", or undefined when absent. */
  metadataValue(key: string): string | undefined;
  /** The framework's error that ends the call with this gRPC status. */
  statusError(code: number, message: string): Error;
}

const UNKNOWN = 2;
const MAX_STATUS_CODE = 16;

const EMPTY_REQUEST: TestRequestFields = {
  payload: '',
  delayMs: 0,
  statusCode: 0,
  statusMessage: '',
  responseSize: 0,
  responseCount: 0,
  echoMetadata: [],
};

/** Unary: wait, fail if asked, else echo. */
export async function unaryResponse(
  request: TestRequestFields,
  env: CallEnvironment,
): Promise<TestResponseFields> {
  await processRequest(request, env);
  return respond(request, env, 0, 1);
}

/** ServerStream: `responseCount` messages (at least one), each after `delayMs`. */
export async function* serverStreamResponses(
  request: TestRequestFields,
  env: CallEnvironment,
): AsyncGenerator<TestResponseFields, void, undefined> {
  await processRequest(request, env);
  yield respond(request, env, 0, 1);
  for (let sequence = 1; sequence < Math.max(request.responseCount, 1); sequence++) {
    await pause(request.delayMs, env.signal);
    yield respond(request, env, sequence, 1);
  }
}

/**
 * ClientStream: process each request as it arrives, then answer once after
 * the client half-closes, using the last request's fields.
 */
export async function clientStreamResponse(
  requests: AsyncIterable<TestRequestFields>,
  env: CallEnvironment,
): Promise<TestResponseFields> {
  let received = 0;
  let last = EMPTY_REQUEST;
  for await (const request of requests) {
    received += 1;
    await processRequest(request, env);
    last = request;
  }
  return respond(last, env, 0, received);
}

/** Bidi: answer each request with one response as it is processed. */
export async function* bidiResponses(
  requests: AsyncIterable<TestRequestFields>,
  env: CallEnvironment,
): AsyncGenerator<TestResponseFields, void, undefined> {
  let received = 0;
  for await (const request of requests) {
    received += 1;
    await processRequest(request, env);
    yield respond(request, env, received - 1, received);
  }
}

/** `size` bytes where byte i is i % 256: cheap to check, and not all zeros that compress away. */
export function filler(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i & 0xff;
  return bytes;
}

/** The status a request's `statusCode` asks for: codes outside 1..16 become UNKNOWN. */
function requestedStatusCode(statusCode: number): number {
  return Number.isInteger(statusCode) && statusCode >= 1 && statusCode <= MAX_STATUS_CODE
    ? statusCode
    : UNKNOWN;
}

async function processRequest(request: TestRequestFields, env: CallEnvironment): Promise<void> {
  await pause(request.delayMs, env.signal);
  if (request.statusCode !== 0) {
    throw env.statusError(requestedStatusCode(request.statusCode), request.statusMessage);
  }
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await delay(signal, ms);
}

function respond(
  request: TestRequestFields,
  env: CallEnvironment,
  sequence: number,
  receivedCount: number,
): TestResponseFields {
  return {
    backend: env.backend,
    payload: request.payload,
    sequence,
    receivedCount,
    metadata: echoedMetadata(request.echoMetadata, env),
    filler: filler(request.responseSize),
  };
}

function echoedMetadata(keys: readonly string[], env: CallEnvironment): Record<string, string> {
  const echoed: Record<string, string> = {};
  for (const key of keys.map((k) => k.toLowerCase())) {
    // Binary values do not fit the string map.
    if (key.endsWith('-bin')) continue;
    const value = env.metadataValue(key);
    if (value !== undefined) echoed[key] = value;
  }
  return echoed;
}
