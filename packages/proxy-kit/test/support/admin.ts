import { setTimeout as sleep } from 'node:timers/promises';
import type { ProxyProcess } from './proxy-process.js';

/** The admin listener's `host:port`, from the binary's `admin listening` log line. */
export async function adminAddress(proxy: ProxyProcess, timeoutMs = 5_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const line = proxy
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"admin listening"'));
    if (line) return (JSON.parse(line) as { address: string }).address;
    if (performance.now() > deadline) {
      throw new Error(`no admin listener:\n${proxy.output()}`);
    }
    await sleep(20);
  }
}

/** GET `path` from the admin listener: status and body. */
export async function adminGet(
  admin: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${admin}${path}`);
  return { status: response.status, body: await response.text() };
}

/** GET a JSON resource of the admin listener. */
export async function adminJson<T = Record<string, unknown>>(
  admin: string,
  path: string,
): Promise<T> {
  const { status, body } = await adminGet(admin, path);
  if (status !== 200) throw new Error(`${path}: HTTP ${status}: ${body}`);
  return JSON.parse(body) as T;
}

/** `/endpoints`, as the tests read it. */
export interface EndpointsBody {
  ready: boolean;
  upstreams: {
    name: string;
    balancer: string;
    endpoints: {
      address: string;
      state: string;
      reason: string | null;
      ejections: number;
      requests: number;
      successes: number;
      failures: number;
      ewmaMs: number | null;
    }[];
  }[];
}
