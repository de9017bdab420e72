/**
 * Keeps the messages of a client-streaming or bidi call's request stream so that a retry can
 * send them again, up to a byte limit (grpc-go's `perRPCBufferSize`, grpc-java's
 * `perRpcBufferLimit`). Past the limit the buffer is dropped and the call can no longer be
 * retried: the current attempt keeps reading the source directly.
 *
 * Only one attempt reads at a time. A failed attempt may still be waiting for the source's next
 * message when the retry starts; the retry waits for that same message instead of asking the
 * source twice, so no message is lost or sent twice.
 */
export class RequestReplay<Request> {
  private readonly source: AsyncIterator<Request>;
  private buffer: Request[] = [];
  private bufferedBytes = 0;
  private pending: Promise<IteratorResult<Request>> | undefined;
  private ended = false;
  /** `false` once the request stream outgrew the limit: no attempt can replay it any more. */
  replayable = true;

  constructor(
    source: AsyncIterable<Request>,
    private readonly limitBytes: number,
  ) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** The request stream of one attempt: every message read so far, then the rest of the source. */
  async *attempt(): AsyncGenerator<Request, void, undefined> {
    let index = 0;
    while (true) {
      if (this.replayable && index < this.buffer.length) {
        yield this.buffer[index++]!;
        continue;
      }
      if (this.ended) return;
      const result = await this.pull();
      if (result.done) return;
      // While replayable, the message went into the buffer and is yielded from there.
      if (!this.replayable) yield result.value;
    }
  }

  /** Stops reading the source, e.g. when the call ends before its request stream did. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.buffer = [];
    await this.source.return?.();
  }

  private pull(): Promise<IteratorResult<Request>> {
    this.pending ??= this.source.next().then(
      (result) => {
        this.pending = undefined;
        if (result.done) {
          this.ended = true;
        } else if (this.replayable) {
          this.bufferedBytes += estimateMessageSize(result.value);
          if (this.bufferedBytes > this.limitBytes) {
            this.replayable = false;
            this.buffer = [];
          } else {
            this.buffer.push(result.value);
          }
        }
        return result;
      },
      (error: unknown) => {
        this.pending = undefined;
        this.ended = true;
        throw error;
      },
    );
    return this.pending;
  }
}

/**
 * Approximates a message's protobuf size: its strings in UTF-8, its bytes fields, 8 bytes per
 * number. Middleware sees decoded messages, not the encoded bytes, so the limit is on this
 * estimate — exact for the string and bytes payloads that make request streams large.
 */
export function estimateMessageSize(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value, 'utf8');
    case 'number':
    case 'bigint':
      return 8;
    case 'boolean':
      return 1;
    case 'object': {
      if (value === null) return 0;
      if (ArrayBuffer.isView(value)) return value.byteLength;
      let size = 0;
      for (const item of Array.isArray(value) ? value : Object.values(value)) {
        size += estimateMessageSize(item);
      }
      return size;
    }
    default:
      return 0;
  }
}
