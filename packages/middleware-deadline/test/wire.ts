import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { encodeMessage, MessageDecoder } from '@switchyard/core';
import { TestRequest, TestResponse } from '@switchyard/testing';

/** One request as a raw HTTP/2 gRPC server received it. */
export interface ReceivedStream {
  headers: http2.IncomingHttpHeaders;
  /** Resolves with the RST_STREAM code once the stream closes (0: closed normally). */
  closed: Promise<number>;
}

/**
 * A gRPC server written against node:http2 alone, to see exactly what a client puts on the
 * wire. `answer: false` leaves every call unanswered, as a hung or deadline-blind server would.
 */
export async function startWireServer({ answer }: { answer: boolean }) {
  const received: ReceivedStream[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const closed = new Promise<number>((resolve) =>
      stream.once('close', () => resolve(stream.rstCode)),
    );
    received.push({ headers, closed });
    stream.resume();
    if (!answer) return;
    stream.once('end', () => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(encodeMessage(TestResponse.encode(TestResponse.fromPartial({})).finish()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    received,
    stop: () => {
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a raw HTTP/2 client read back from one gRPC call. */
export interface WireAnswer {
  httpStatus: number | undefined;
  responses: TestResponse[];
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

/**
 * Makes one TestService Unary call on `session` with exactly the given extra headers, bypassing
 * every gRPC client library (which would refuse or rewrite a malformed grpc-timeout).
 */
export function rawUnaryCall(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  request: Partial<TestRequest> = {},
): Promise<WireAnswer> {
  const stream = session.request({
    ':method': 'POST',
    ':path': '/switchyard.testing.v1.TestService/Unary',
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  stream.end(encodeMessage(TestRequest.encode(TestRequest.fromPartial(request)).finish()));
  return new Promise((resolve, reject) => {
    const answer: WireAnswer = {
      httpStatus: undefined,
      responses: [],
      grpcStatus: undefined,
      grpcMessage: undefined,
    };
    const read = (fields: http2.IncomingHttpHeaders) => {
      answer.grpcStatus ??= fields['grpc-status'] as string | undefined;
      answer.grpcMessage ??= fields['grpc-message'] as string | undefined;
    };
    stream.on('response', (fields) => {
      answer.httpStatus = fields[':status'];
      read(fields);
    });
    stream.on('trailers', read);
    stream.on('error', reject);
    const decoder = new MessageDecoder();
    stream.on('data', (chunk: Buffer) => {
      for (const { data } of decoder.push(chunk)) answer.responses.push(TestResponse.decode(data));
    });
    stream.on('close', () => resolve(answer));
  });
}
