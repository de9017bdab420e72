import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CleanupSteps } from '../src/index.js';

describe('CleanupSteps', () => {
  it('runs the steps last first, each awaited, and each only once', async () => {
    const cleanup = new CleanupSteps();
    const ran: string[] = [];
    cleanup.defer(() => ran.push('server'));
    cleanup.defer(async () => {
      await sleep(20);
      ran.push('client');
    });
    await cleanup.run();
    expect(ran).toEqual(['client', 'server']);
    await cleanup.run();
    expect(ran).toEqual(['client', 'server']);
  });
});
