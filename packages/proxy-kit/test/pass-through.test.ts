import { parseGrpcTimeout } from '@switchyard/core';
import { staticDiscovery } from '@switchyard/discovery';
import { createTestClient, type RunningTestServer, startServer } from '@switchyard/testing';
import { Metadata, Status } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../src/index.js';
import { grpcFrame, rawCall, regularFields, startRawBackend } from './support/raw-http2.js';

// What goes in comes out: any path, every metadata field (binary, repeated, in order), trailers,
// Trailers-Only and the compressed-flag byte of each message, with no proto in the proxy.

const binary = Buffer.from([0, 1, 2, 250, 255]).toString('base64');
let received: { rawHeaders: string[]; body: Buffer } | undefined;
let echo: Awaited<ReturnType<typeof startRawBackend>>;
let echoProxy: RunningProxy;

beforeAll(async () => {
  // Echoes the request body verbatim with fixed response metadata; or answers Trailers-Only
  // when the path says so.
  echo = await startRawBackend((stream, headers, rawHeaders) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      received = { rawHeaders, body: Buffer.concat(chunks) };
      if (headers[':path'] === '/trailers.Only/Method') {
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': '7',
            'grpc-message': 'denied%20%E2%9C%93',
            'x-reason-bin': binary,
          },
          { endStream: true },
        );
        return;
      }
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc+proto',
          'x-response': 'r',
          'x-response-bin': binary,
        },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () =>
        stream.sendTrailers({
          'grpc-status': '0',
          'grpc-message': 'fine',
          'x-trailer-bin': binary,
        }),
      );
      stream.end(Buffer.concat(chunks));
    });
  });
  echoProxy = await startProxy({
    listen: '127.0.0.1:0',
    discovery: staticDiscovery([echo.address]),
  });
});

afterAll(async () => {
  await echoProxy.close(1000);
  await echo.close();
});

const proxied = () => `127.0.0.1:${echoProxy.address.port}`;

describe('pass-through fidelity', () => {
  it('forwards any path and every request field, repeated and binary ones included, in order', async () => {
    const body = Buffer.concat([grpcFrame(Buffer.from('first')), grpcFrame(Buffer.from('second'))]);
    const response = await rawCall(
      proxied(),
      {
        ':path': '/no.Such.Service/AnyMethod',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '5S',
        'x-repeated': ['one', 'two'],
        'x-data-bin': binary,
        'x-unicode-escaped': 'caf%C3%A9',
      },
      body,
    );
    const fields = regularFields(received!.rawHeaders);
    // The deadline crosses the proxy as what is left of it, minus the propagation offset.
    const timeout = fields.find(([name]) => name === 'grpc-timeout')?.[1];
    expect(parseGrpcTimeout(timeout!)).toBeLessThanOrEqual(5_000 - 5);
    expect(parseGrpcTimeout(timeout!)).toBeGreaterThan(4_900);
    expect(fields).toEqual([
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-timeout', timeout],
      ['x-repeated', 'one'],
      ['x-repeated', 'two'],
      ['x-data-bin', binary],
      ['x-unicode-escaped', 'caf%C3%A9'],
    ]);
    expect(received!.rawHeaders).toContain('/no.Such.Service/AnyMethod');
    expect(received!.body.equals(body)).toBe(true);
    expect(response.data.equals(body)).toBe(true);
    expect(response.headers).toMatchObject({
      ':status': 200,
      'content-type': 'application/grpc+proto',
      'x-response': 'r',
      'x-response-bin': binary,
    });
    expect(response.trailers).toMatchObject({
      'grpc-status': '0',
      'grpc-message': 'fine',
      'x-trailer-bin': binary,
    });
  });

  it('leaves the compressed flag and bytes of each message untouched', async () => {
    // Not valid gzip: the proxy must not look inside a message, compressed or not.
    const body = Buffer.concat([
      grpcFrame(Buffer.from([1, 2, 3]), true),
      grpcFrame(Buffer.alloc(0)),
    ]);
    const response = await rawCall(
      proxied(),
      { ':path': '/a/b', 'content-type': 'application/grpc', 'grpc-encoding': 'gzip' },
      body,
    );
    expect(received!.body.equals(body)).toBe(true);
    expect(response.data.equals(body)).toBe(true);
    expect(regularFields(received!.rawHeaders)).toContainEqual(['grpc-encoding', 'gzip']);
  });

  it('forwards a Trailers-Only response as Trailers-Only', async () => {
    const response = await rawCall(
      proxied(),
      { ':path': '/trailers.Only/Method', 'content-type': 'application/grpc' },
      grpcFrame(Buffer.from('x')),
    );
    expect(response.trailersOnly).toBe(true);
    expect(response.headers).toMatchObject({
      'grpc-status': '7',
      'grpc-message': 'denied%20%E2%9C%93',
      'x-reason-bin': binary,
    });
    expect(response.data.length).toBe(0);
  });
});

describe('with real gRPC peers', () => {
  let backend: RunningTestServer;
  let proxy: RunningProxy;

  beforeAll(async () => {
    backend = await startServer();
    proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([backend.address]),
    });
  });

  afterAll(async () => {
    await proxy.close(1000);
    await backend.stop();
  });

  it('carries gzip-compressed 3 MiB messages and metadata both ways', async () => {
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`, {
      channelOptions: {
        'grpc.default_compression_algorithm': 2, // gzip
        'grpc.max_receive_message_length': 8 << 20,
      },
    });
    try {
      let headers: Metadata | undefined;
      const response = await client.unary(
        { payload: 'x'.repeat(3 << 20), responseSize: 3 << 20, echoMetadata: ['x-caller'] },
        {
          metadata: Metadata({ 'x-caller': 'tests', 'x-blob-bin': Buffer.from([9, 8, 7]) }),
          onHeader: (h) => {
            headers = h;
          },
        },
      );
      expect(response.payload.length).toBe(3 << 20);
      expect(response.filler.length).toBe(3 << 20);
      expect(response.metadata).toEqual({ 'x-caller': 'tests' });
      expect(headers?.get('content-type')).toBe('application/grpc+proto');
    } finally {
      close();
    }
  });

  it('passes status codes and Unicode messages through unchanged', async () => {
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      await expect(
        client.unary({ statusCode: Status.FAILED_PRECONDITION, statusMessage: 'ça ne va pas ✗' }),
      ).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION, details: 'ça ne va pas ✗' });
    } finally {
      close();
    }
    // Any path: the backend, not the proxy, says the method does not exist.
    const unknown = await rawCall(
      `127.0.0.1:${proxy.address.port}`,
      { ':path': '/no.Such.Service/Method', 'content-type': 'application/grpc', te: 'trailers' },
      grpcFrame(Buffer.alloc(0)),
    );
    expect(
      unknown.trailersOnly ? unknown.headers['grpc-status'] : unknown.trailers?.['grpc-status'],
    ).toBe(String(Status.UNIMPLEMENTED));
  });
});
