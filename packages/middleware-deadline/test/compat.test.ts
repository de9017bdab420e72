import { TestServiceDefinition } from '@switchyard/testing';
import { ClientError, createClientFactory, Status } from 'nice-grpc';
import * as niceGrpcDeadline from 'nice-grpc-client-middleware-deadline';
import type { ClientMiddleware } from 'nice-grpc-common';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as switchyardDeadline from '../src/index.js';
import { deadlineServerPerFile } from './servers.js';

// Switching is a change of import: the same names, the same call option, the same errors.
const channel = deadlineServerPerFile();

it('accepts every call option of nice-grpc-client-middleware-deadline', () => {
  expectTypeOf(switchyardDeadline.deadlineMiddleware).toExtend<
    ClientMiddleware<niceGrpcDeadline.DeadlineOptions>
  >();
  expectTypeOf<niceGrpcDeadline.DeadlineOptions>().toExtend<switchyardDeadline.DeadlineOptions>();
});

describe.each([
  ['nice-grpc-client-middleware-deadline', niceGrpcDeadline],
  ['@switchyard/middleware-deadline', switchyardDeadline],
])('with %s', (_, { deadlineMiddleware }) => {
  const UNARY = '/switchyard.testing.v1.TestService/Unary';
  const exceeded = new ClientError(UNARY, Status.DEADLINE_EXCEEDED, 'Deadline exceeded');

  it('fails a late call with the same ClientError, for a Date or milliseconds', async () => {
    const client = createClientFactory()
      .use(deadlineMiddleware)
      .create(TestServiceDefinition, channel());
    await expect(client.unary({ delayMs: 1_000 }, { deadline: 100 })).rejects.toEqual(exceeded);
    const deadline = new Date(Date.now() + 100);
    await expect(client.unary({ delayMs: 1_000 }, { deadline })).rejects.toEqual(exceeded);
  });

  it('lets a call that finishes in time succeed', async () => {
    const client = createClientFactory()
      .use(deadlineMiddleware)
      .create(TestServiceDefinition, channel());
    await expect(client.unary({ payload: 'hi' }, { deadline: 2_000 })).resolves.toMatchObject({
      payload: 'hi',
    });
  });

  it("honours nice-grpc's default call options", async () => {
    const client = createClientFactory()
      .use(deadlineMiddleware)
      .create(TestServiceDefinition, channel(), { '*': { deadline: 100 } });
    await expect(client.unary({ delayMs: 1_000 })).rejects.toEqual(exceeded);
  });

  it('leaves cancellation by the caller an AbortError', async () => {
    const client = createClientFactory()
      .use(deadlineMiddleware)
      .create(TestServiceDefinition, channel());
    const controller = new AbortController();
    const call = client.unary({ delayMs: 1_000 }, { deadline: 2_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
  });
});
