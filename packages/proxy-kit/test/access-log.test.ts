import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestClient } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { startProxyProcess } from './support/proxy-process.js';

// The binary's log as an operator reads it: ISO times and level names, an access log line per
// call when asked for (sampled, failures always), and a line when an endpoint is ejected.

let backend: BackendProcess;

beforeAll(async () => {
  backend = await startBackendProcess('logged');
});

afterAll(async () => {
  await backend.stop();
});

function lines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the log', () => {
  it('has ISO times, level names and, with --access-log 1, a line per call', async () => {
    const proxy = await startProxyProcess(['--upstream', backend.address, '--access-log', '1']);
    const { client, close } = createTestClient(proxy.address);
    try {
      await client.unary({ payload: 'x'.repeat(100) });
      await client.unary({ statusCode: 5, statusMessage: 'no such thing' }).catch(() => {});
      const started = await proxy.stop();
      expect(started.code).toBe(0);
    } finally {
      close();
    }
    const logged = lines(proxy.output());
    const listening = logged.find((l) => l.msg === 'listening')!;
    expect(listening.level).toBe('info');
    expect(listening.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const calls = logged.filter((l) => l.msg === 'call');
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({
      level: 'info',
      method: '/switchyard.testing.v1.TestService/Unary',
      route: 'routes[0]',
      endpoint: backend.address,
      status: 'OK',
      attempts: 1,
      peerAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    expect(calls[0]!.durationMs).toBeGreaterThan(0);
    // The request message (its 5-byte prefix, the payload and its field tags) and the response.
    expect(calls[0]!.requestBytes).toBeGreaterThan(105);
    expect(calls[0]!.responseBytes).toBeGreaterThan(5);
    expect(calls[1]).toMatchObject({ status: 'NOT_FOUND', message: 'no such thing' });
  });

  it('samples with --access-log 0.1, and logs every failed call whatever the sample', async () => {
    const proxy = await startProxyProcess(['--upstream', backend.address, '--access-log', '0.1']);
    const { client, close } = createTestClient(proxy.address);
    try {
      for (let i = 0; i < 20; i++)
        await Promise.all(Array.from({ length: 20 }, () => client.unary({})));
      for (let i = 0; i < 5; i++) await client.unary({ statusCode: 13 }).catch(() => {});
    } finally {
      close();
      await proxy.stop();
    }
    const calls = lines(proxy.output()).filter((l) => l.msg === 'call');
    const ok = calls.filter((l) => l.status === 'OK').length;
    // 400 calls at 10 %: 40 expected; far outside 15–70 is not sampling.
    expect(ok).toBeGreaterThan(15);
    expect(ok).toBeLessThan(70);
    expect(calls.filter((l) => l.status === 'INTERNAL')).toHaveLength(5);
  });

  it('with accessLog.methods in the file, logs only the calls to those methods', async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'proxy-kit-access-')), 'proxy.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:0
workers: 1
discovery: { type: static, endpoints: [${backend.address}] }
accessLog: { methods: ["switchyard.testing.v1.TestService/ServerStream"] }
`,
    );
    const proxy = await startProxyProcess(['--config', config]);
    const { client, close } = createTestClient(proxy.address);
    try {
      await client.unary({});
      for await (const _ of client.serverStream({ responseCount: 3 })) void _;
    } finally {
      close();
      await proxy.stop();
    }
    const calls = lines(proxy.output()).filter((l) => l.msg === 'call');
    expect(calls.map((l) => l.method)).toEqual(['/switchyard.testing.v1.TestService/ServerStream']);
  });

  it('without --access-log, logs no call', async () => {
    const proxy = await startProxyProcess(['--upstream', backend.address]);
    const { client, close } = createTestClient(proxy.address);
    try {
      await client.unary({});
    } finally {
      close();
      await proxy.stop();
    }
    expect(lines(proxy.output()).filter((l) => l.msg === 'call')).toEqual([]);
  });
});
