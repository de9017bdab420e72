import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A stand-in OpenTelemetry collector on 127.0.0.1: takes OTLP/HTTP exports and drops them. */
export interface OtlpSink {
  /** For `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  endpoint: string;
  /** Export requests and bytes received so far, per signal path (`/v1/traces`, `/v1/metrics`). */
  received(): Record<string, { requests: number; bytes: number }>;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const received: Record<string, { requests: number; bytes: number }> = {};
  const server = createServer((request, response) => {
    const path = request.url ?? '/';
    received[path] ??= { requests: 0, bytes: 0 };
    const tally = received[path];
    tally.requests += 1;
    request.on('data', (chunk: Buffer) => {
      tally.bytes += chunk.length;
    });
    // An empty body is a valid, empty Export…ServiceResponse: everything accepted.
    request.on('end', () =>
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received: () => structuredClone(received),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
