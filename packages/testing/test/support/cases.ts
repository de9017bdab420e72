import { Status } from 'nice-grpc-common';
import type { TestCall } from '../../src/index.js';

/** A call every TestService implementation must answer identically. */
export interface InteropCase {
  name: string;
  call: TestCall;
  /** Guards against peers agreeing because all of them are broken the same way. */
  expected: { responses: number; code: Status };
}

const ECHO_METADATA = {
  'x-tenant': 'acme',
  'x-multi': ['one', 'two'],
};

export const INTEROP_CASES: InteropCase[] = [
  {
    name: 'Unary echo',
    call: { method: 'Unary', requests: [{ payload: 'hello' }] },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'Unary with a delay',
    call: { method: 'Unary', requests: [{ payload: 'slow', delayMs: 30 }] },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'Unary forced status with message',
    call: {
      method: 'Unary',
      requests: [{ statusCode: Status.FAILED_PRECONDITION, statusMessage: 'not ready yet' }],
    },
    expected: { responses: 0, code: Status.FAILED_PRECONDITION },
  },
  {
    name: 'Unary status code out of range becomes UNKNOWN',
    call: { method: 'Unary', requests: [{ statusCode: 42, statusMessage: 'odd code' }] },
    expected: { responses: 0, code: Status.UNKNOWN },
  },
  {
    name: 'Unary with response_size',
    call: { method: 'Unary', requests: [{ payload: 'big', responseSize: 70_000 }] },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'Unary echo_metadata',
    call: {
      method: 'Unary',
      requests: [{ echoMetadata: ['x-tenant', 'X-Multi', 'x-absent', 'x-absent-bin'] }],
      metadata: ECHO_METADATA,
    },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'ServerStream of three with delay, filler and metadata',
    call: {
      method: 'ServerStream',
      requests: [
        {
          payload: 'tick',
          responseCount: 3,
          delayMs: 10,
          responseSize: 16,
          echoMetadata: ['x-tenant'],
        },
      ],
      metadata: ECHO_METADATA,
    },
    expected: { responses: 3, code: Status.OK },
  },
  {
    name: 'ServerStream forced status',
    call: {
      method: 'ServerStream',
      requests: [
        { responseCount: 3, delayMs: 5, statusCode: Status.NOT_FOUND, statusMessage: 'gone' },
      ],
    },
    expected: { responses: 0, code: Status.NOT_FOUND },
  },
  {
    name: 'ClientStream answers with the count and last request',
    call: {
      method: 'ClientStream',
      requests: [
        { payload: 'a', delayMs: 5 },
        { payload: 'b' },
        { payload: 'c', responseSize: 8, echoMetadata: ['x-tenant'] },
      ],
      metadata: ECHO_METADATA,
    },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'ClientStream with no requests',
    call: { method: 'ClientStream', requests: [] },
    expected: { responses: 1, code: Status.OK },
  },
  {
    name: 'ClientStream fails when the failing request is processed',
    call: {
      method: 'ClientStream',
      requests: [
        { payload: 'a' },
        { statusCode: Status.RESOURCE_EXHAUSTED, statusMessage: 'too many' },
        { payload: 'never' },
      ],
    },
    expected: { responses: 0, code: Status.RESOURCE_EXHAUSTED },
  },
  {
    name: 'Bidi answers every request',
    call: {
      method: 'Bidi',
      requests: [
        { payload: 'a', delayMs: 5 },
        { payload: 'b', responseSize: 4 },
        { payload: 'c', echoMetadata: ['x-multi'] },
      ],
      metadata: ECHO_METADATA,
    },
    expected: { responses: 3, code: Status.OK },
  },
  {
    name: 'Bidi fails mid-stream after answering earlier requests',
    call: {
      method: 'Bidi',
      requests: [
        { payload: 'a' },
        { payload: 'b' },
        { statusCode: Status.PERMISSION_DENIED, statusMessage: 'no entry', delayMs: 5 },
        { payload: 'never' },
      ],
    },
    expected: { responses: 2, code: Status.PERMISSION_DENIED },
  },
  {
    name: 'Bidi with no requests',
    call: { method: 'Bidi', requests: [] },
    expected: { responses: 0, code: Status.OK },
  },
];
