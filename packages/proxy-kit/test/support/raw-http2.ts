import {
  connect,
  constants,
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2';
import type { AddressInfo } from 'node:net';

/**
 * Plain node:http2 peers for the tests that need to see or produce exact frames: every header as
 * it was on the wire, a reset with a chosen code, a response without trailers.
 */

/** A node:http2 server whose streams `onStream` answers. */
export async function startRawBackend(
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => void,
  settings?: Settings,
): Promise<{ address: string; close(): Promise<void> }> {
  const server = createServer({ settings });
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });
  server.on(
    'stream',
    (
      stream: ServerHttp2Stream,
      headers: IncomingHttpHeaders,
      _flags: number,
      rawHeaders: unknown,
    ) => {
      stream.on('error', () => {});
      onStream(stream, headers, rawHeaders as string[]);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What a raw call received. */
export interface RawResponse {
  headers: IncomingHttpHeaders;
  /** The response HEADERS carried END_STREAM (Trailers-Only). */
  trailersOnly: boolean;
  data: Buffer;
  trailers: IncomingHttpHeaders | undefined;
  /** RST_STREAM code if the stream was reset, else undefined. */
  rstCode: number | undefined;
}

/** Makes one request with node:http2 and collects everything that comes back. */
export function rawCall(
  address: string,
  headers: OutgoingHttpHeaders,
  body: Buffer = Buffer.alloc(0),
  options: { maxSendHeaderBlockLength?: number } = {},
): Promise<RawResponse> {
  const session = connect(`http://${address}`, {
    maxSendHeaderBlockLength: options.maxSendHeaderBlockLength,
  });
  session.on('error', () => {});
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ...headers });
    const result: RawResponse = {
      headers: {},
      trailersOnly: false,
      data: Buffer.alloc(0),
      trailers: undefined,
      rstCode: undefined,
    };
    const chunks: Buffer[] = [];
    stream.on('response', (h, flags) => {
      result.headers = h;
      result.trailersOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('trailers', (t) => {
      result.trailers = t;
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      result.data = Buffer.concat(chunks);
      if (stream.rstCode !== constants.NGHTTP2_NO_ERROR) result.rstCode = stream.rstCode;
      session.close();
      resolve(result);
    });
    stream.on('frameError', (type, code) => reject(new Error(`frame error ${type} ${code}`)));
    stream.end(body);
  });
}

/** A gRPC message frame: flag byte, 4-byte length, payload. */
export function grpcFrame(payload: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Header fields of a node:http2 `rawHeaders` array, as [name, value] pairs without pseudo-headers. */
export function regularFields(rawHeaders: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!rawHeaders[i]!.startsWith(':')) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  }
  return pairs;
}
