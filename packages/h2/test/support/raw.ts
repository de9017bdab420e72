import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import {
  type ConnectionHandler,
  H2Connection,
  type H2Options,
  type H2Stream,
  HeaderBlock,
  HpackDecoder,
  HpackEncoder,
  type StreamHandler,
} from '../../src/index.js';

/**
 * Test peers that speak raw frames over real TCP sockets on 127.0.0.1: a {@link RawPeer} sends
 * exactly the bytes a test builds (rule-breaking ones included) and reads every frame that comes
 * back, against an {@link H2Connection} of either role.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer | number[] = [],
): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const header = Buffer.alloc(9);
  header.writeUIntBE(body.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, body]);
}

export function u32(...values: number[]): Buffer {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => {
    out.writeUInt32BE(v >>> 0, 4 * i);
  });
  return out;
}

export function settings(...pairs: [number, number][]): Buffer {
  const payload = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(T.SETTINGS, 0, 0, payload);
}

export const REQUEST: readonly string[] = [
  ':method',
  'POST',
  ':scheme',
  'http',
  ':path',
  '/echo',
  ':authority',
  'localhost',
  'content-type',
  'application/grpc',
];

/** Frames and helpers of one raw connection. */
export class RawPeer {
  readonly socket: Socket;
  readonly encoder = new HpackEncoder();
  readonly decoder = new HpackDecoder();
  readonly frames: Frame[] = [];
  /** Raw bytes received that were not frames (an HTTP/1.1 answer). */
  raw = Buffer.alloc(0);
  closed = false;
  #buffered = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #read = 0;
  #expectPreface: boolean;

  constructor(socket: Socket, expectPreface = false) {
    this.socket = socket;
    this.#expectPreface = expectPreface;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffered = Buffer.concat([this.#buffered, chunk]);
    if (this.#expectPreface) {
      if (this.#buffered.length < PREFACE.length) return;
      this.#buffered = this.#buffered.subarray(PREFACE.length);
      this.#expectPreface = false;
    }
    while (this.#buffered.length >= 9) {
      const length = this.#buffered.readUIntBE(0, 3);
      if (this.#buffered.length < 9 + length) break;
      this.frames.push({
        type: this.#buffered[3]!,
        flags: this.#buffered[4]!,
        stream: this.#buffered.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buffered.subarray(9, 9 + length)),
      });
      this.#buffered = this.#buffered.subarray(9 + length);
    }
    if (this.#buffered.length > 0 && /^HTTP\/1/.test(this.#buffered.toString('latin1', 0, 6))) {
      this.raw = Buffer.concat([this.raw, this.#buffered]);
      this.#buffered = Buffer.alloc(0);
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  send(...chunks: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(chunks));
  }

  /** HEADERS with an encoded block; END_HEADERS unless `endHeaders` is false. */
  headers(
    stream: number,
    fields: readonly string[] = REQUEST,
    { endStream = false, endHeaders = true, flags = 0, prefix = Buffer.alloc(0) } = {},
  ): Buffer {
    const block = Buffer.from(this.encoder.encode(new HeaderBlock([...fields])));
    return frame(
      T.HEADERS,
      flags | (endStream ? F.END_STREAM : 0) | (endHeaders ? F.END_HEADERS : 0),
      stream,
      Buffer.concat([prefix, block]),
    );
  }

  /** Waits for the next frame (from where the last wait stopped) matching `match`. */
  async next(
    match: (f: Frame) => boolean = () => true,
    timeoutMs = 2000,
  ): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#read < this.frames.length) {
        const f = this.frames[this.#read++]!;
        if (match(f)) return f;
      }
      if (this.closed || Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY that ended the connection: `{ code, lastStreamId, debug }`. */
  async goaway(
    timeoutMs = 2000,
  ): Promise<{ code: number; lastStreamId: number; debug: string } | undefined> {
    const f = await this.next(
      (f) => f.type === T.GOAWAY && f.payload.readUInt32BE(4) !== 0,
      timeoutMs,
    );
    if (f === undefined) return undefined;
    return {
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
      debug: f.payload.toString('latin1', 8),
    };
  }

  /** Code of the next RST_STREAM on `stream`. */
  async reset(stream: number, timeoutMs = 2000): Promise<number | undefined> {
    const f = await this.next((f) => f.type === T.RST_STREAM && f.stream === stream, timeoutMs);
    return f?.payload.readUInt32BE(0);
  }

  /** The connection still works: a PING gets its ACK, with its payload. */
  async alive(): Promise<boolean> {
    const payload = Buffer.from(
      `alive${Math.floor(Math.random() * 1000)}`.padEnd(8, '.').slice(0, 8),
    );
    this.send(frame(T.PING, 0, 0, payload));
    const ack = await this.next(
      (f) => f.type === T.PING && f.flags === F.ACK && f.payload.equals(payload),
    );
    return ack !== undefined && !this.closed;
  }

  /** Resolves once the socket closed (or after `timeoutMs`): whether it did. */
  async whenClosed(timeoutMs = 2000): Promise<boolean> {
    if (this.closed) return true;
    await Promise.race([once(this.socket, 'close'), new Promise((r) => setTimeout(r, timeoutMs))]);
    return this.closed;
  }

  /**
   * Every header block received on `stream`. All blocks are decoded, in order, by a decoder of
   * their own: the dynamic table depends on every block before.
   */
  decodedHeaders(stream: number): HeaderBlock[] {
    const decoder = new HpackDecoder();
    const out: HeaderBlock[] = [];
    for (const f of this.frames) {
      if (f.type !== T.HEADERS) continue;
      const block = decoder.decode(f.payload);
      if (f.stream === stream) out.push(block);
    }
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface ServerEvents {
  streams: H2Stream[];
  resets: { stream: number; code: number; connectionError: string | undefined }[];
  closes: (string | undefined)[];
  connections: H2Connection[];
}

/**
 * A server on @switchyard/h2 that answers every request, once it ended, with `200`, a body and
 * END_STREAM — unless the path is `/hold`, whose streams stay open until the test acts.
 */
export async function startServer(
  options: H2Options = {},
  onStream?: (stream: H2Stream, headers: HeaderBlock, endStream: boolean) => void,
): Promise<{ port: number; events: ServerEvents; server: Server; close(): Promise<void> }> {
  const events: ServerEvents = { streams: [], resets: [], closes: [], connections: [] };
  const handler: StreamHandler = {
    onHeaders(stream, _headers, endStream) {
      if (endStream) respond(stream);
    },
    onData(stream, data, endStream) {
      stream.consume(data.length);
      if (endStream) respond(stream);
    },
    onReset(stream, code, connectionError) {
      events.resets.push({ stream: stream.id, code, connectionError });
    },
  };
  const paths = new Map<H2Stream, string>();
  function respond(stream: H2Stream): void {
    if (paths.get(stream) === '/hold') return;
    stream.sendHeaders(new HeaderBlock([':status', '200', 'content-type', 'text/plain']), false);
    stream.sendData(Buffer.from('hello\n'), true);
  }
  const server = createServer((socket) => {
    const connection = new H2Connection(
      socket,
      'server',
      {
        onStream(stream, headers, endStream) {
          events.streams.push(stream);
          stream.handler = handler;
          paths.set(stream, headers.get(':path') ?? '');
          if (onStream) onStream(stream, headers, endStream);
          else if (endStream) respond(stream);
        },
        onReady() {},
        onGoaway() {},
        onCapacity() {},
        onClose(error) {
          events.closes.push(error);
        },
      } satisfies ConnectionHandler,
      options,
    );
    events.connections.push(connection);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    events,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of events.connections) c.destroy('test over');
        server.close(() => resolve());
      }),
  };
}

/** A raw client connected to `port`; with `handshake`, preface + SETTINGS sent and the server's SETTINGS ACKed. */
export async function rawClient(
  port: number,
  { handshake = true, settingsFrame = settings() } = {},
): Promise<RawPeer> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const peer = new RawPeer(socket);
  if (handshake) {
    peer.send(PREFACE, settingsFrame);
    const theirs = await peer.next((f) => f.type === T.SETTINGS && f.flags === 0);
    if (theirs === undefined) throw new Error('no SETTINGS from the server');
    peer.send(frame(T.SETTINGS, F.ACK, 0));
  }
  return peer;
}

/**
 * A raw server, and an {@link H2Connection} in the client role connected to it: the test plays
 * the server side frame by frame.
 */
export async function rawServerAndClient(
  handler: Partial<ConnectionHandler> = {},
  options: H2Options = {},
): Promise<{ peer: RawPeer; client: H2Connection; closes: (string | undefined)[]; close(): void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const closes: (string | undefined)[] = [];
  const socket = connect(port, '127.0.0.1');
  const client = new H2Connection(
    socket,
    'client',
    {
      onReady() {},
      onGoaway() {},
      onCapacity() {},
      ...handler,
      onClose(error) {
        closes.push(error);
        handler.onClose?.(error);
      },
    },
    options,
  );
  const [serverSocket] = await accepted;
  server.close();
  const peer = new RawPeer(serverSocket, true);
  return {
    peer,
    client,
    closes,
    close() {
      client.destroy('test over');
      serverSocket.destroy();
    },
  };
}

/** A stream handler that records what it is told. */
export function recorder(): StreamHandler & {
  headers: HeaderBlock[];
  data: Buffer[];
  ends: number;
  resets: { code: number; connectionError: string | undefined }[];
} {
  const r = {
    headers: [] as HeaderBlock[],
    data: [] as Buffer[],
    ends: 0,
    resets: [] as { code: number; connectionError: string | undefined }[],
    onHeaders(_s: H2Stream, h: HeaderBlock, end: boolean) {
      r.headers.push(h);
      if (end) r.ends++;
    },
    onData(s: H2Stream, d: Buffer, end: boolean) {
      r.data.push(Buffer.from(d));
      s.consume(d.length);
      if (end) r.ends++;
    },
    onReset(_s: H2Stream, code: number, connectionError: string | undefined) {
      r.resets.push({ code, connectionError });
    },
  };
  return r;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
