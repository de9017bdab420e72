import { ClientError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthState, HealthCheckResponse_ServingStatus as ServingStatus } from '../src/index.js';
import { type RunningHealthServer, startHealthServer } from './support/health-server.js';

let running: RunningHealthServer | undefined;
afterEach(() => {
  running?.close();
  running = undefined;
});

async function start(...args: Parameters<typeof startHealthServer>) {
  running = await startHealthServer(...args);
  return running;
}

async function failure(promise: Promise<unknown>): Promise<ClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClientError);
  return error as ClientError;
}

describe('Check', () => {
  it('answers SERVING for the whole server by default, and each service as set', async () => {
    const { client, health } = await start();
    health.setStatus('healthy', 'shop.v1.Cart');
    health.setStatus('unhealthy', 'shop.v1.Payments');

    expect(await client.check({ service: '' })).toEqual({ status: ServingStatus.SERVING });
    expect(await client.check({ service: 'shop.v1.Cart' })).toEqual({
      status: ServingStatus.SERVING,
    });
    expect(await client.check({ service: 'shop.v1.Payments' })).toEqual({
      status: ServingStatus.NOT_SERVING,
    });
  });

  it('fails with NOT_FOUND for a service never registered or unregistered', async () => {
    const { client, health } = await start();
    const unknown = await failure(client.check({ service: 'shop.v1.Nope' }));
    expect([unknown.code, unknown.details]).toEqual([
      Status.NOT_FOUND,
      'unknown service "shop.v1.Nope"',
    ]);

    health.setStatus('healthy', 'shop.v1.Cart');
    health.setStatus('unknown', 'shop.v1.Cart');
    expect((await failure(client.check({ service: 'shop.v1.Cart' }))).code).toBe(Status.NOT_FOUND);
  });
});

describe('List', () => {
  it('returns every registered service with its status, the server included', async () => {
    const { client, health } = await start();
    health.setStatus('healthy', 'a.A');
    health.setStatus('unhealthy', 'b.B');
    health.setStatus('healthy', 'c.C');
    health.setStatus('unknown', 'c.C');

    expect(await client.list({})).toEqual({
      statuses: {
        '': { status: ServingStatus.SERVING },
        'a.A': { status: ServingStatus.SERVING },
        'b.B': { status: ServingStatus.NOT_SERVING },
      },
    });
  });

  it('fails with RESOURCE_EXHAUSTED beyond its limit (100 by default, as gRFC A90)', async () => {
    const { client, health } = await start();
    for (let i = 1; i < 100; i++) health.setStatus('healthy', `s${i}.S`);
    expect(Object.keys((await client.list({})).statuses)).toHaveLength(100);

    health.setStatus('healthy', 's100.S');
    const error = await failure(client.list({}));
    expect([error.code, error.details]).toEqual([
      Status.RESOURCE_EXHAUSTED,
      '101 services exceed the health list limit of 100',
    ]);
  });
});

describe('Watch', () => {
  it('sends SERVICE_UNKNOWN for an unknown service, stays open, and follows it once set', async () => {
    const { client, health } = await start();
    const watch = client.watch({ service: 'late.Service' })[Symbol.asyncIterator]();

    expect((await watch.next()).value).toEqual({ status: ServingStatus.SERVICE_UNKNOWN });
    health.setStatus('healthy', 'late.Service');
    expect((await watch.next()).value).toEqual({ status: ServingStatus.SERVING });
    health.setStatus('unknown', 'late.Service');
    expect((await watch.next()).value).toEqual({ status: ServingStatus.SERVICE_UNKNOWN });
    await watch.return?.();
  });

  it('sees every one of 100 rapid transitions, in order, on each of several streams', async () => {
    const { client, health } = await start();
    health.setStatus('healthy', 'flappy.Service');
    const watches = Array.from({ length: 3 }, () =>
      client.watch({ service: 'flappy.Service' })[Symbol.asyncIterator](),
    );
    // The first message proves the stream is subscribed before the flapping starts.
    for (const watch of watches) {
      expect((await watch.next()).value).toEqual({ status: ServingStatus.SERVING });
    }

    const expected: ServingStatus[] = [];
    for (let i = 0; i < 100; i++) {
      const healthy = i % 2 === 1;
      health.setStatus(healthy ? 'healthy' : 'unhealthy', 'flappy.Service');
      // Repeating a status is not a transition and must not produce a message.
      health.setStatus(healthy ? 'healthy' : 'unhealthy', 'flappy.Service');
      // Changes to other services must not leak into this stream.
      health.setStatus(healthy ? 'unhealthy' : 'healthy', 'other.Service');
      expected.push(healthy ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    }

    for (const watch of watches) {
      const received: ServingStatus[] = [];
      while (received.length < expected.length) {
        received.push((await watch.next()).value.status);
      }
      expect(received).toEqual(expected);
    }
    // Nothing beyond the 100 transitions: next come shutdown's NOT_SERVING and the end.
    health.stop();
    for (const watch of watches) {
      expect((await watch.next()).value).toEqual({ status: ServingStatus.NOT_SERVING });
      expect(await watch.next()).toEqual({ done: true, value: undefined });
    }
  });

  it('ends with OK on server shutdown after sending NOT_SERVING', async () => {
    const { client, health } = await start();
    const received: ServingStatus[] = [];
    const watching = (async () => {
      for await (const { status } of client.watch({ service: '' })) {
        received.push(status);
        if (received.length === 1) health.stop();
      }
    })();

    await expect(watching).resolves.toBeUndefined();
    expect(received).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });

  it('ends with RESOURCE_EXHAUSTED, never skipping a change, when a stream falls too far behind', async () => {
    const { client, health } = await start({ service: { maxWatchBacklog: 10 } });
    const watch = client.watch({ service: '' })[Symbol.asyncIterator]();
    expect((await watch.next()).value).toEqual({ status: ServingStatus.SERVING });

    // Synchronous changes fill the stream's queue before it can send any.
    for (let i = 0; i < 20; i++) health.setStatus(i % 2 === 0 ? 'unhealthy' : 'healthy');

    const received: ServingStatus[] = [];
    const error = await (async () => {
      try {
        for (;;) received.push((await watch.next()).value.status);
      } catch (e) {
        return e as ClientError;
      }
    })();
    expect(error.code).toBe(Status.RESOURCE_EXHAUSTED);
    // Whatever was sent before the error is an unbroken prefix of the real sequence.
    expect(received).toEqual(
      received.map((_, i) => (i % 2 === 0 ? ServingStatus.NOT_SERVING : ServingStatus.SERVING)),
    );
  });

  it('unsubscribes when the client cancels', async () => {
    const health = HealthState();
    let subscribed = 0;
    const subscribe = health.subscribe;
    health.subscribe = (listener) => {
      subscribed++;
      const unsubscribe = subscribe(listener);
      return () => {
        subscribed--;
        return unsubscribe();
      };
    };
    const { client } = await start({ health });
    const cancel = new AbortController();
    const watch = client.watch({ service: '' }, { signal: cancel.signal })[Symbol.asyncIterator]();
    await watch.next();
    expect(subscribed).toBe(1);

    cancel.abort();
    await expect(watch.next()).rejects.toThrow();
    await expect.poll(() => subscribed, { timeout: 2000 }).toBe(0);
  });
});

describe('HealthState', () => {
  it('rejects a status outside its vocabulary', () => {
    const health = HealthState();
    expect(() => health.setStatus('SERVING' as never, 'a.A')).toThrowErrorMatchingInlineSnapshot(
      `[TypeError: health status must be 'healthy', 'unhealthy' or 'unknown', got "SERVING"]`,
    );
    expect(health.getStatus('a.A')).toBe('unknown');
  });

  it('drains to unhealthy, ignores later updates, and refuses calls only once stopped', () => {
    const health = HealthState();
    health.setStatus('healthy', 'a.A');
    const changes: string[] = [];
    health.subscribe(({ service, status }) => changes.push(`${service}=${status}`));

    health.drain();
    health.setStatus('healthy', 'a.A');
    health.setStatus('healthy', 'b.B');
    expect(changes).toEqual(['=unhealthy', 'a.A=unhealthy']);
    expect(health.list()).toEqual(
      new Map([
        ['', 'unhealthy'],
        ['a.A', 'unhealthy'],
      ]),
    );
    expect([health.phase, health.refusalReason('a.A')]).toEqual(['draining', undefined]);

    health.stop();
    health.stop();
    expect([health.phase, health.stopSignal.aborted]).toEqual(['stopped', true]);
    expect(health.refusalReason('a.A')).toBe('server is shutting down');
  });

  it('delivers a change to every listener even when one throws, then reports the error', () => {
    const health = HealthState();
    const seen: string[] = [];
    health.subscribe(() => {
      throw new Error('listener broke');
    });
    health.subscribe(({ status }) => seen.push(status));

    expect(() => health.setStatus('unhealthy')).toThrow('listener broke');
    expect(seen).toEqual(['unhealthy']);
    expect(health.getStatus()).toBe('unhealthy');
  });
});
