import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../fixtures/backend.mjs', import.meta.url));
const BUILT = [
  new URL('../../dist/index.js', import.meta.url),
  new URL('../../../testing/dist/index.js', import.meta.url),
];

/** One JSON line the fixture printed, with the test-side time it was read. */
export type BackendEvent = Record<string, unknown> & { readAt: number };

/** The fixture server running as a child process. */
export interface BackendProcess {
  child: ChildProcess;
  address: string;
  /** Lines printed so far. */
  events: BackendEvent[];
  /** Resolves with the first event matching `predicate` (already printed or future). */
  event(predicate: (event: BackendEvent) => boolean): Promise<BackendEvent>;
  /** Resolves when the process exits, with its code, signal and test-side time. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Stderr so far, for failure messages. */
  stderr(): string;
  /** SIGKILLs the process if it is still running (works on a stopped process too). */
  kill(): void;
}

/** Starts test/fixtures/backend.mjs with `env` (DRAIN_MS, GRACE_MS) and waits for its port. */
export async function startBackendProcess(
  env: Record<string, string> = {},
): Promise<BackendProcess> {
  // The fixture imports dist like a deployed server; turbo builds it before `test`.
  for (const url of BUILT) {
    if (!existsSync(url)) {
      throw new Error(
        `${fileURLToPath(url)} is missing: run \`npx turbo run build --filter=@switchyard/middleware-health\` first`,
      );
    }
  }
  const child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  // 'close' comes after stdout has been read to its end, unlike 'exit'.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const events: BackendEvent[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push({ ...(JSON.parse(line) as Record<string, unknown>), readAt: performance.now() });
    for (const wake of [...waiters]) wake();
  });

  const event = (predicate: (event: BackendEvent) => boolean) =>
    new Promise<BackendEvent>((resolve, reject) => {
      const look = () => {
        const found = events.find(predicate);
        if (found) {
          waiters.delete(look);
          resolve(found);
        }
      };
      waiters.add(look);
      look();
      void closed.then(() => {
        if (!waiters.has(look)) return;
        waiters.delete(look);
        reject(new Error(`backend exited before the awaited event:\n${stderr}`));
      });
    });

  const backend: BackendProcess = {
    child,
    address: '',
    events,
    event,
    exited,
    stderr: () => stderr,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  try {
    const { port } = await event((e) => typeof e.port === 'number');
    backend.address = `127.0.0.1:${port}`;
  } catch (error) {
    backend.kill();
    throw error;
  }
  return backend;
}
