import type { Client } from '@connectrpc/connect';
import { ConnectError } from '@connectrpc/connect';
import type { Status } from 'nice-grpc-common';
import type { TestService } from '../../src/gen/connect/switchyard/testing/v1/test_pb.js';
import type { CallOutcome, TestCall, TestResponse } from '../../src/index.js';

type ConnectResponse = Pick<
  TestResponse,
  'backend' | 'payload' | 'sequence' | 'receivedCount' | 'metadata' | 'filler'
>;

/** Makes `call` with a connect-node client, recording the outcome in the nice-grpc shape. */
export async function callWithConnect(
  client: Client<typeof TestService>,
  call: TestCall,
): Promise<CallOutcome> {
  const headers = new Headers();
  for (const [key, value] of Object.entries(call.metadata ?? {})) {
    for (const item of typeof value === 'string' ? [value] : value) headers.append(key, item);
  }
  const single = call.requests[0] ?? {};
  const stream = async function* () {
    yield* call.requests;
  };
  const responses: TestResponse[] = [];
  const record = (response: ConnectResponse) =>
    responses.push({
      backend: response.backend,
      payload: response.payload,
      sequence: response.sequence,
      receivedCount: response.receivedCount,
      metadata: { ...response.metadata },
      filler: response.filler,
    });
  try {
    switch (call.method) {
      case 'Unary':
        record(await client.unary(single, { headers }));
        break;
      case 'ServerStream':
        for await (const response of client.serverStream(single, { headers })) record(response);
        break;
      case 'ClientStream':
        record(await client.clientStream(stream(), { headers }));
        break;
      case 'Bidi':
        for await (const response of client.bidi(stream(), { headers })) record(response);
        break;
    }
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    // Connect's Code and nice-grpc's Status both number the gRPC codes.
    return {
      responses,
      status: { code: error.code as number as Status, details: error.rawMessage },
    };
  }
  return { responses, status: { code: 0, details: '' } };
}
