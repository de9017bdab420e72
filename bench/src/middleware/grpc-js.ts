import { once } from 'node:events';
import {
  type CallOptions,
  type Client,
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  InterceptingCall,
  type Interceptor,
  makeGenericClientConstructor,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { TestRequest, TestResponse } from '@switchyard/testing';
import { STREAM_REQUEST, UNARY_REQUEST, type Variant } from './variant.js';

const SERVICE = '/switchyard.testing.v1.TestService';
const codec = {
  requestSerialize: (request: TestRequest) => Buffer.from(TestRequest.encode(request).finish()),
  requestDeserialize: (bytes: Buffer) => TestRequest.decode(bytes),
  responseSerialize: (response: TestResponse) =>
    Buffer.from(TestResponse.encode(response).finish()),
  responseDeserialize: (bytes: Buffer) => TestResponse.decode(bytes),
};

/** The two TestService methods the scenario calls, as a plain grpc-js service definition. */
const testService = {
  unary: { path: `${SERVICE}/Unary`, requestStream: false, responseStream: false, ...codec },
  serverStream: {
    path: `${SERVICE}/ServerStream`,
    requestStream: false,
    responseStream: true,
    ...codec,
  },
} satisfies ServiceDefinition;

const TestServiceClient = makeGenericClientConstructor(testService, 'TestService');

/** The methods `makeGenericClientConstructor` adds, typed. */
interface TestServiceGrpcJsClient extends Client {
  unary(
    request: TestRequest,
    options: CallOptions,
    callback: (error: ServiceError | null) => void,
  ): ClientUnaryCall;
  serverStream(request: TestRequest, options: CallOptions): ClientReadableStream<TestResponse>;
}

/** What a grpc-js variant adds to a bare grpc-js client and server. */
export interface GrpcJsStack {
  name: string;
  baseline: string;
  clientInterceptors?: Interceptor[];
  serverInterceptors?: ServerInterceptor[];
  /** Channel options, e.g. a service config with a retry policy. */
  channelOptions?: Record<string, unknown>;
  /** Options of every call, e.g. a deadline. */
  callOptions?: () => CallOptions;
}

/**
 * A variant on @grpc/grpc-js alone, no nice-grpc: the same TestService answers (the backend
 * name and the echoed payload) from handlers written against grpc-js's own API.
 */
export function grpcJsVariant(stack: GrpcJsStack): Variant {
  const {
    name,
    baseline,
    clientInterceptors = [],
    serverInterceptors = [],
    channelOptions = {},
  } = stack;
  const callOptions = stack.callOptions ?? (() => ({}));
  return {
    name,
    baseline,
    async serve() {
      const server = new Server({ interceptors: serverInterceptors });
      server.addService(testService, {
        unary(
          call: ServerUnaryCall<TestRequest, TestResponse>,
          callback: sendUnaryData<TestResponse>,
        ) {
          callback(null, answer(call.request, 0));
        },
        async serverStream(call: ServerWritableStream<TestRequest, TestResponse>) {
          const count = Math.max(1, call.request.responseCount);
          for (let sequence = 0; sequence < count; sequence++) {
            // Waits when the stream's buffer is full, as nice-grpc's handlers do by awaiting.
            if (!call.write(answer(call.request, sequence))) {
              await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
              if (call.cancelled) return;
            }
          }
          call.end();
        },
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
          error ? reject(error) : resolve(bound),
        ),
      );
      return `127.0.0.1:${port}`;
    },
    connect(address) {
      const client = new TestServiceClient(address, credentials.createInsecure(), {
        ...channelOptions,
        interceptors: clientInterceptors,
      }) as unknown as TestServiceGrpcJsClient;
      return {
        unary: (onMessage) =>
          new Promise<void>((resolve, reject) =>
            client.unary(UNARY_REQUEST, callOptions(), (error) => {
              if (error) return reject(error);
              onMessage();
              resolve();
            }),
          ),
        serverStream: (onMessage, signal) =>
          new Promise<void>((resolve, reject) => {
            const stream = client.serverStream(STREAM_REQUEST, callOptions());
            const cancel = () => stream.cancel();
            signal.addEventListener('abort', cancel);
            stream.on('data', onMessage);
            stream.on('error', reject);
            stream.on('end', resolve);
            stream.on('close', () => signal.removeEventListener('abort', cancel));
          }),
        close: () => client.close(),
      };
    },
  };
}

function answer(request: TestRequest, sequence: number): TestResponse {
  return TestResponse.fromPartial({
    backend: 'backend-0',
    payload: request.payload,
    sequence,
    receivedCount: 1,
  });
}

/** A client interceptor that only forwards: the machinery every grpc-js interceptor pays for. */
export const passThroughClientInterceptor: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options));

/** A server interceptor that only forwards. */
export const passThroughServerInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call);
