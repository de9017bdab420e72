import { type CallOptions, ClientError, Metadata, Status } from 'nice-grpc-common';
import type {
  TestRequest,
  TestResponse,
  TestServiceClient,
} from './gen/nice/switchyard/testing/v1/test.js';

/** A TestService method, by its proto name. */
export type TestMethod = 'Unary' | 'ServerStream' | 'ClientStream' | 'Bidi';

/** One call described as data, so any client (nice-grpc, connect, Python) can make it. */
export interface TestCall {
  method: TestMethod;
  /** Exactly one for Unary and ServerStream; any number for the client-streaming methods. */
  requests: readonly Partial<TestRequest>[];
  /** Request metadata; an array sends the key once per value. */
  metadata?: Readonly<Record<string, string | readonly string[]>>;
}

/** What a call ended with: every response received, then the final status. */
export interface CallOutcome {
  responses: TestResponse[];
  status: { code: Status; details: string };
}

/** The single request of a Unary or ServerStream call, or a clear error. */
export function singleRequest(call: TestCall): Partial<TestRequest> {
  const [request, ...rest] = call.requests;
  if (!request || rest.length > 0) {
    throw new TypeError(`${call.method} takes exactly one request, got ${call.requests.length}`);
  }
  return request;
}

/**
 * Makes `call` with a nice-grpc client and records its outcome. A failed call
 * resolves with its status; only errors that are not gRPC statuses (such as
 * an abort through `options.signal`) reject.
 */
export async function callTestService(
  client: TestServiceClient,
  call: TestCall,
  options: Omit<CallOptions, 'metadata'> = {},
): Promise<CallOutcome> {
  const callOptions: CallOptions = { ...options, metadata: toMetadata(call.metadata) };
  const responses: TestResponse[] = [];
  try {
    switch (call.method) {
      case 'Unary':
        responses.push(await client.unary(singleRequest(call), callOptions));
        break;
      case 'ServerStream':
        for await (const response of client.serverStream(singleRequest(call), callOptions)) {
          responses.push(response);
        }
        break;
      case 'ClientStream':
        responses.push(await client.clientStream(requestStream(call), callOptions));
        break;
      case 'Bidi':
        for await (const response of client.bidi(requestStream(call), callOptions)) {
          responses.push(response);
        }
        break;
    }
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    return { responses, status: { code: error.code, details: error.details } };
  }
  return { responses, status: { code: Status.OK, details: '' } };
}

async function* requestStream(call: TestCall): AsyncIterable<Partial<TestRequest>> {
  yield* call.requests;
}

function toMetadata(metadata: TestCall['metadata'] = {}): Metadata {
  const result = Metadata();
  for (const [key, value] of Object.entries(metadata)) {
    for (const item of typeof value === 'string' ? [value] : value) result.append(key, item);
  }
  return result;
}
