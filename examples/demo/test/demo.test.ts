import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSnapshots, type Snapshot } from '../src/table.js';

// `npm run demo` from the repository root, as the README says: it builds what the demo needs
// (cached by turbo after the suite's build) and runs it. Its stdout is not a terminal here, so
// the demo prints a snapshot of its table every two seconds, the story lines, the summary and a
// last `summary: {…}` JSON line. Everything below is read from that output; nothing is told to
// the demo but to run.

const WINDOW_S = 2;
const root = fileURLToPath(new URL('../../..', import.meta.url));

interface Summary {
  calls: number;
  failed: number;
  answered: Record<string, number>;
  endpoints: Record<string, string>;
  slow: { backend: string; at: number; shareAfter: number };
  killed: {
    backend: string;
    at: number;
    ejectedAt: number | null;
    failedAfterKill: number;
    failedAfterEjection: number | null;
  };
  deadline: { ms: number; hops: { service: string; deadlineLeftMs: number }[] };
  retried: { failedOn: string; answeredBy: string; attempt: number };
  prometheus: string[];
  sampledTraceId: string | null;
}

let stdout: string;
let snapshots: Snapshot[];
let summary: Summary;

const row = (snapshot: Snapshot, backend: string) => {
  const found = snapshot.rows.find((r) => r.backend === backend);
  if (found === undefined) throw new Error(`no row for ${backend} at t=${snapshot.seconds}s`);
  return found;
};

beforeAll(async () => {
  const run = await promisify(execFile)('npm', ['run', 'demo'], {
    cwd: root,
    timeout: 90_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  stdout = run.stdout;
  snapshots = parseSnapshots(stdout);
  const line = stdout.split('\n').find((l) => l.startsWith('summary: '));
  if (line === undefined) throw new Error(`no summary line in:\n${stdout}`);
  summary = JSON.parse(line.slice('summary: '.length)) as Summary;
}, 100_000);

describe('npm run demo', () => {
  it('prints its table every two seconds through the run, a row per backend', () => {
    expect(snapshots.length).toBeGreaterThanOrEqual(10);
    for (const snapshot of snapshots) {
      expect(snapshot.rows.map((r) => r.backend)).toEqual(['backend-a', 'backend-b', 'backend-c']);
    }
    expect(new Set(snapshots.map((s) => s.phase))).toEqual(new Set(['steady', 'slow', 'killed']));
  });

  it('spreads the calls over all three backends while they are alike', () => {
    const steady = snapshots.filter((s) => s.phase === 'steady');
    expect(steady.length).toBeGreaterThanOrEqual(2);
    for (const backend of ['backend-a', 'backend-b', 'backend-c']) {
      const calls = steady.reduce((sum, s) => sum + row(s, backend).calls, 0);
      expect(calls, backend).toBeGreaterThan(0);
      expect(summary.answered[backend], backend).toBeGreaterThan(0);
    }
    for (const snapshot of steady) {
      expect(snapshot.failed).toBe(0);
      for (const r of snapshot.rows) if (r.calls > 0) expect(r.p99).toBeGreaterThanOrEqual(r.p50);
    }
  });

  it('sends the slow backend under 10 % of the calls once it turned slow', () => {
    const { backend } = summary.slow;
    expect(backend).toBe('backend-b');
    // Windows that begin at least two seconds after the slowdown: peak-EWMA has noticed.
    const settled = snapshots.filter(
      (s) => s.phase === 'slow' && s.phaseAge >= 2 * WINDOW_S && s.calls > 0,
    );
    expect(settled.length).toBeGreaterThanOrEqual(2);
    for (const snapshot of settled) {
      expect(row(snapshot, backend).state).toBe('slow');
      expect(row(snapshot, backend).share, `t=${snapshot.seconds}s`).toBeLessThan(10);
    }
    expect(summary.slow.shareAfter).toBeLessThan(10);
  });

  it('fails no call once proxy-kit has ejected the killed backend', () => {
    const { backend, ejectedAt } = summary.killed;
    expect(backend).toBe('backend-c');
    // When the demo saw proxy-kit log it, as the story line printed it.
    const logged =
      /^» t=([\d.]+)s proxy-kit: (upstream connection failed|endpoint ejected) \(backend-c\)$/m.exec(
        stdout,
      );
    expect(logged).not.toBeNull();
    expect(ejectedAt).toBe(Number(logged?.[1]));
    // Windows that begin after the ejection (0.2 s over it: both times are printed to 0.1 s).
    const after = snapshots.filter(
      (s) => s.phase === 'killed' && s.seconds - WINDOW_S >= (ejectedAt as number) + 0.2,
    );
    expect(after.length).toBeGreaterThanOrEqual(2);
    for (const snapshot of after) {
      expect(snapshot.failed, `t=${snapshot.seconds}s`).toBe(0);
      expect(snapshot.calls).toBeGreaterThan(0);
      expect(row(snapshot, backend)).toMatchObject({ state: 'ejected', calls: 0, share: 0 });
    }
    expect(summary.killed.failedAfterEjection).toBe(0);
  });

  it('shows a deadline shrinking across three hops and a call retried elsewhere', () => {
    const [backendHop, pricingHop] = summary.deadline.hops;
    expect(summary.deadline.ms).toBe(500);
    expect(backendHop?.service).toMatch(/^backend-[abc]$/);
    expect(pricingHop?.service).toBe('pricing');
    expect(backendHop?.deadlineLeftMs).toBeLessThan(500);
    expect(pricingHop?.deadlineLeftMs).toBeLessThan(backendHop?.deadlineLeftMs as number);
    expect(pricingHop?.deadlineLeftMs).toBeGreaterThan(0);
    expect(summary.retried.attempt).toBe(2);
    expect(summary.retried.answeredBy).not.toBe(summary.retried.failedOn);
  });

  it('ends with the Prometheus endpoints it served and a sampled trace across four processes', () => {
    expect(summary.prometheus).toHaveLength(5);
    for (const url of summary.prometheus)
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(stdout).toMatch(
      /rpc_server_call_duration_count\{[^}]*rpc_method="demo\.v1\.Catalog\/GetItem",rpc_response_status_code="OK"[^}]*\} [1-9]\d*/,
    );
    expect(summary.sampledTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect(stdout).toContain(
      `trace ${summary.sampledTraceId}, the deadline call: 6 spans from 4 processes`,
    );
  });

  it('agrees with proxy-kit’s own metrics on who answered', () => {
    // The proxy's admin counts its calls per endpoint; the client's figures exclude only the
    // deadline call and the retried one, which the proxy counts too.
    for (const [backend, endpoint] of Object.entries(summary.endpoints)) {
      const line = new RegExp(
        `^ +proxykit_endpoint_calls_total\\{[^}]*endpoint="${endpoint}",grpc_status="OK"[^}]*\\} (\\d+)$`,
        'm',
      ).exec(stdout);
      expect(line, backend).not.toBeNull();
      const proxied = Number(line?.[1]);
      expect(proxied, backend).toBeGreaterThanOrEqual(summary.answered[backend] as number);
      expect(proxied, backend).toBeLessThanOrEqual((summary.answered[backend] as number) + 2);
    }
  });
});
