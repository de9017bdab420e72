import { describe, expect, it } from 'vitest';
import {
  decodeGrpcMessage,
  encodeGrpcMessage,
  parseGrpcStatus,
  Status,
  statusFromHttp,
  statusFromName,
  statusName,
} from '../src/index.js';

describe('status codes', () => {
  it('maps all 17 names and numbers both ways', () => {
    const names = [
      'OK',
      'CANCELLED',
      'UNKNOWN',
      'INVALID_ARGUMENT',
      'DEADLINE_EXCEEDED',
      'NOT_FOUND',
      'ALREADY_EXISTS',
      'PERMISSION_DENIED',
      'RESOURCE_EXHAUSTED',
      'FAILED_PRECONDITION',
      'ABORTED',
      'OUT_OF_RANGE',
      'UNIMPLEMENTED',
      'INTERNAL',
      'UNAVAILABLE',
      'DATA_LOSS',
      'UNAUTHENTICATED',
    ];
    names.forEach((name, code) => {
      expect(statusName(code)).toBe(name);
      expect(statusFromName(name)).toBe(code);
      expect(statusFromName(name.toLowerCase())).toBe(code);
    });
    expect(statusName(17)).toBe('UNKNOWN');
    expect(statusFromName('NOPE')).toBeUndefined();
  });

  it('maps HTTP statuses per the spec', () => {
    expect(statusFromHttp(400)).toBe(Status.INTERNAL);
    expect(statusFromHttp(401)).toBe(Status.UNAUTHENTICATED);
    expect(statusFromHttp(403)).toBe(Status.PERMISSION_DENIED);
    expect(statusFromHttp(404)).toBe(Status.UNIMPLEMENTED);
    for (const http of [429, 502, 503, 504]) expect(statusFromHttp(http)).toBe(Status.UNAVAILABLE);
    for (const http of [200, 301, 500, 418]) expect(statusFromHttp(http)).toBe(Status.UNKNOWN);
  });

  it('parses grpc-status strictly', () => {
    expect(parseGrpcStatus('0')).toBe(Status.OK);
    expect(parseGrpcStatus('14')).toBe(Status.UNAVAILABLE);
    expect(parseGrpcStatus(undefined)).toBeUndefined();
    for (const bad of ['', '-1', '1a', ' 1', '99', '1.0'])
      expect(parseGrpcStatus(bad)).toBe(Status.UNKNOWN);
  });

  it('percent-encodes grpc-message and decodes it back', () => {
    for (const text of ['plain', '100% done', 'naïve ☃ \n\ttabs', '']) {
      const encoded = encodeGrpcMessage(text);
      expect(encoded).toMatch(/^[\x20-\x7e]*$/);
      expect(decodeGrpcMessage(encoded)).toBe(text);
    }
    expect(encodeGrpcMessage('a%b')).toBe('a%25b');
    expect(decodeGrpcMessage('bad %zz escape %')).toBe('bad %zz escape %');
  });
});
