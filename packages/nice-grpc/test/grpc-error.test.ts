import { Status, StatusError } from '@switchyard/core';
import { ClientError, ServerError } from 'nice-grpc-common';
import { describe, expect, it } from 'vitest';
import { GrpcError } from '../src/index.js';

describe('GrpcError', () => {
  it('is a nice-grpc ServerError and keeps trailers', () => {
    const error = new GrpcError(Status.NOT_FOUND, 'no such thing');
    expect(error).toBeInstanceOf(ServerError);
    expect(error.codeName).toBe('NOT_FOUND');
    expect(error.trailers.has('x')).toBe(false);
  });

  it('normalises what calls throw', () => {
    expect(GrpcError.from(new ClientError('/a.B/C', Status.UNAVAILABLE, 'down'))).toMatchObject({
      code: Status.UNAVAILABLE,
      details: 'down',
    });
    expect(GrpcError.from(new ServerError(Status.ABORTED, 'x')).code).toBe(Status.ABORTED);
    const abort = new Error('stop');
    abort.name = 'AbortError';
    expect(GrpcError.from(abort).code).toBe(Status.CANCELLED);
    expect(GrpcError.from(new TypeError('boom'))).toMatchObject({
      code: Status.UNKNOWN,
      details: 'boom',
    });
    expect(GrpcError.from('text').details).toBe('text');
    const client = new GrpcError(Status.INTERNAL, 'x').toClientError('/a.B/C');
    expect(client).toBeInstanceOf(ClientError);
    expect(client.path).toBe('/a.B/C');
  });
});

describe('GrpcError from core', () => {
  it("keeps the code and details of core's transport-neutral StatusError", () => {
    expect(GrpcError.from(new StatusError(Status.RESOURCE_EXHAUSTED, 'too big'))).toMatchObject({
      code: Status.RESOURCE_EXHAUSTED,
      details: 'too big',
    });
  });
});
