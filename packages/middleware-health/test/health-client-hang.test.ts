import { afterEach, describe, expect, it } from 'vitest';
import { type HealthWatch, watchHealth } from '../src/index.js';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { recordTransitions } from './support/transitions.js';

const INTERVAL_MS = 1000;
const TIMEOUT_MS = 400;
// Scheduling slack for a loaded 2-core machine: resuming a stopped process, timers firing late.
const SLACK_MS = 250;

let backend: BackendProcess | undefined;
let watch: HealthWatch | undefined;
afterEach(() => {
  watch?.close();
  backend?.kill();
});

describe.each([
  ['Watch and Check', true],
  ['Check only', false],
])('a backend process that stops answering, watched with %s', (_, useWatch) => {
  it('is declared NOT_SERVING by a timed-out Check, and SERVING again within one interval of SIGCONT', async () => {
    backend = await startBackendProcess();
    const recorder = recordTransitions();
    watch = watchHealth({
      address: backend.address,
      intervalMs: INTERVAL_MS,
      timeoutMs: TIMEOUT_MS,
      watch: useWatch,
      onChange: recorder.onChange,
    });
    await recorder.until('SERVING');

    // The process keeps its socket (and any Watch stream) open but answers nothing.
    const stoppedAt = performance.now();
    backend.child.kill('SIGSTOP');
    const down = await recorder.until('NOT_SERVING');
    expect(down).toMatchObject({
      reason: `Check timed out after ${TIMEOUT_MS} ms`,
      source: 'check',
    });
    // The Check that noticed gave up at its timeout, not at some TCP timeout…
    expect(down.latencyMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 1);
    expect(down.latencyMs).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    // …and it was sent at most one interval after the process stopped.
    expect(down.seenAt - stoppedAt).toBeLessThan(INTERVAL_MS + TIMEOUT_MS + SLACK_MS);

    const continuedAt = performance.now();
    backend.child.kill('SIGCONT');
    const up = await recorder.until('SERVING', recorder.transitions.indexOf(down));
    expect(up).toMatchObject({ from: 'NOT_SERVING', reason: 'Check answered SERVING' });
    expect(up.seenAt - continuedAt).toBeLessThan(INTERVAL_MS);
    console.info(
      `[hang, ${useWatch ? 'watch' : 'check'}] stop detected after ${Math.round(down.seenAt - stoppedAt)} ms (check latency ${Math.round(down.latencyMs ?? 0)} ms); return after ${Math.round(up.seenAt - continuedAt)} ms`,
    );
  });
});
