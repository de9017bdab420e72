import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./backend.mjs', import.meta.url));

/** A TestService backend running as a child process. */
export interface BackendProcess {
  address: string;
  backend: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a backend named `backend` whose unary calls take `delayMs` longer, on `port` (default:
 * any free one).
 */
export async function startBackendProcess(
  backend: string,
  delayMs = 0,
  port = 0,
): Promise<BackendProcess> {
  const child = spawn(process.execPath, [SCRIPT, backend, String(delayMs), String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`backend ${backend} did not start`)), 15_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    void exited.then(() => reject(new Error(`backend ${backend} exited`)));
  });
  return {
    address,
    backend,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT'); // a stopped process cannot handle SIGTERM
      child.kill('SIGTERM');
      await exited;
    },
  };
}
