import {
  authorizationDecisionChannel,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
  Status,
} from '@switchyard/core';
import { createRetryBudget, createRetryMiddleware } from '@switchyard/middleware-retry';
import {
  CleanupSteps,
  createTestClient,
  createTestServiceImpl,
  seriesWith,
  startServer,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { ServerError } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsClientMiddleware, metricsServerMiddleware } from '../src/index.js';
import { scrapedMeter } from './harness.js';

const UNARY = '/switchyard.testing.v1.TestService/Unary';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

describe('events from other middleware', () => {
  it('counts retries, hedges and budget refusals by method, kind and status', async () => {
    const { meterProvider, scrape } = await scrapedMeter(cleanup);
    metricsClientMiddleware({ meterProvider, services: [TestServiceDefinition] });
    // The retry middleware names the method by path; a path no client here calls is _OTHER.
    const server = await startServer();
    cleanup.defer(() => server.stop());
    const client = createTestClient(server.address, {
      middleware: [metricsClientMiddleware({ meterProvider, services: [TestServiceDefinition] })],
    });
    cleanup.defer(() => client.close());
    await client.client.unary({});
    const unavailable = Status.UNAVAILABLE;
    retryAttemptChannel.publish({
      method: UNARY,
      attempt: 2,
      delayMs: 10,
      kind: 'retry',
      code: unavailable,
    });
    retryAttemptChannel.publish({
      method: UNARY,
      attempt: 3,
      delayMs: 20,
      kind: 'retry',
      code: unavailable,
    });
    retryAttemptChannel.publish({
      method: UNARY,
      attempt: 2,
      delayMs: 0,
      kind: 'hedge',
      code: undefined,
    });
    retryAttemptChannel.publish({
      method: '/other.Service/Method',
      attempt: 2,
      delayMs: 0,
      kind: 'transparent',
      code: Status.UNAVAILABLE,
    });
    retryBudgetExhaustedChannel.publish({ method: UNARY, code: unavailable });

    const families = await scrape();
    const attempts = families.get('rpc_client_retry_attempts_total')?.samples ?? [];
    const unary = { rpc_method: 'switchyard.testing.v1.TestService/Unary' };
    expect(
      seriesWith(attempts, {
        ...unary,
        rpc_retry_kind: 'retry',
        rpc_response_status_code: 'UNAVAILABLE',
      }).value,
    ).toBe(2);
    const hedge = seriesWith(attempts, { ...unary, rpc_retry_kind: 'hedge' });
    expect(hedge.value).toBe(1);
    expect(hedge.labels.rpc_response_status_code).toBeUndefined();
    expect(
      seriesWith(attempts, { rpc_method: '_OTHER', rpc_retry_kind: 'transparent' }).value,
    ).toBe(1);
    // Two client middleware share the meter, yet each event is counted once.
    expect(attempts.reduce((sum, s) => sum + s.value, 0)).toBe(4);
    const exhausted = families.get('rpc_client_retry_budget_exhausted_total')?.samples ?? [];
    expect(
      exhausted.map((s) => [s.labels.rpc_method, s.labels.rpc_response_status_code, s.value]),
    ).toEqual([['switchyard.testing.v1.TestService/Unary', 'UNAVAILABLE', 1]]);
  });

  it('counts authorization decisions by method and decision, never by identity', async () => {
    const { meterProvider, scrape } = await scrapedMeter(cleanup);
    const server = await startServer({
      middleware: [metricsServerMiddleware({ meterProvider, naming: 'go-grpc-prometheus' })],
    });
    cleanup.defer(() => server.stop());
    const client = createTestClient(server.address);
    cleanup.defer(() => client.close());
    await client.client.unary({});
    for (const decision of ['allow', 'allow', 'deny'] as const) {
      authorizationDecisionChannel.publish({ method: UNARY, decision, identity: 'spiffe://x/y' });
    }
    authorizationDecisionChannel.publish({
      method: UNARY,
      decision: 'unauthenticated',
      identity: undefined,
    });
    const families = await scrape();
    const decisions = families.get('grpc_server_authorization_decisions_total')?.samples ?? [];
    expect(decisions.map((s) => [s.labels.grpc_method, s.labels.decision, s.value]).sort()).toEqual(
      [
        ['Unary', 'allow', 2],
        ['Unary', 'deny', 1],
        ['Unary', 'unauthenticated', 1],
      ],
    );
    expect(JSON.stringify(decisions)).not.toContain('spiffe');
  });
});

describe('middleware sharing a meter', () => {
  it('add up in one series per method instead of overwriting each other', async () => {
    const { meterProvider, scrape } = await scrapedMeter(cleanup);
    const servers = await Promise.all(
      [0, 1].map(() => startServer({ middleware: [metricsServerMiddleware({ meterProvider })] })),
    );
    for (const server of servers) {
      cleanup.defer(() => server.stop());
      const client = createTestClient(server.address);
      cleanup.defer(() => client.close());
      await client.client.unary({});
      await client.client.unary({});
    }
    const families = await scrape();
    const started = families.get('rpc_server_call_started_total')?.samples ?? [];
    expect(started.map((s) => [s.labels.rpc_method, s.value])).toEqual([
      ['switchyard.testing.v1.TestService/Unary', 4],
    ]);
    const duration = families.get('rpc_server_call_duration')?.histograms ?? [];
    expect(duration.map((h) => h.count)).toEqual([4]);
  });
});

describe('with middleware-retry', () => {
  it('counts the retries it makes and the ones its budget refuses, end to end', async () => {
    const { meterProvider, scrape } = await scrapedMeter(cleanup);
    let failures = 0;
    const server = await startServer({
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary(request) {
          // The first two calls fail UNAVAILABLE; every call with a payload fails too.
          if (failures++ < 2 || request.payload === 'always') {
            throw new ServerError(Status.UNAVAILABLE, 'warming up');
          }
          return { backend };
        },
      }),
    });
    cleanup.defer(() => server.stop());
    // No reserve and no ratio: the budget allows no retry at all once the first is spent.
    const budget = createRetryBudget({ minRetriesPerSecond: 0, retryRatio: 0 });
    const channel = createChannel(server.address);
    cleanup.defer(() => channel.close());
    // On a client factory the last `use` runs first: metrics see the call as the app does.
    const client = createClientFactory()
      .use(createRetryMiddleware({ random: () => 0 }))
      .use(metricsClientMiddleware({ meterProvider, services: [TestServiceDefinition] }))
      .create(TestServiceDefinition, channel);
    const options = { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1 };
    await client.unary({}, options);
    await expect(
      client.unary({ payload: 'always' }, { ...options, retryBudget: budget }),
    ).rejects.toMatchObject({ code: Status.UNAVAILABLE });

    const families = await scrape();
    const attempts = families.get('rpc_client_retry_attempts_total')?.samples ?? [];
    expect(attempts.map((s) => [s.labels.rpc_method, s.labels.rpc_retry_kind, s.value])).toEqual([
      ['switchyard.testing.v1.TestService/Unary', 'retry', 2],
    ]);
    const exhausted = families.get('rpc_client_retry_budget_exhausted_total')?.samples ?? [];
    expect(exhausted.map((s) => [s.labels.rpc_method, s.value])).toEqual([
      ['switchyard.testing.v1.TestService/Unary', 1],
    ]);
    // The call's duration covers its retries: one OK, one UNAVAILABLE.
    const duration = families.get('rpc_client_call_duration')?.histograms ?? [];
    expect(duration.map((h) => [h.labels.rpc_response_status_code, h.count]).sort()).toEqual([
      ['OK', 1],
      ['UNAVAILABLE', 1],
    ]);
  });
});
