import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism } from 'node:os';

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** User + system CPU seconds a running process has used (/proc/<pid>/stat utime + stime). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(`/proc/${pid}/stat`);
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU seconds of this process's children that have exited and been waited for (cutime + cstime
 * of /proc/self/stat): the cost of a short-lived tool such as h2load, read before and after it.
 */
export function reapedChildrenCpuSeconds(): number {
  const fields = statFields('/proc/self/stat');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
}

/** Peak resident set size in MB (VmHWM of /proc/<pid>/status). */
export function peakRssMb(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Samples a process's VmRSS every 100 ms until stopped. */
export function sampleRss(pid: number): { largestMb(): number; stop(): void } {
  let largest = 0;
  const sample = () => {
    let status = '';
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      // The process has exited; the samples so far stand.
    }
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    if (match) largest = Math.max(largest, Number(match[1]) / 1024);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    largestMb() {
      sample();
      return largest;
    },
    stop: () => clearInterval(timer),
  };
}

// Fields after "pid (comm)"; comm may hold spaces and parentheses, so split after the last ')'.
function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time this process has used, user + system, in microseconds (getrusage: exact, all threads). */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * Keeps every thread of process `pid` on one CPU (sched_setaffinity through util-linux's
 * taskset): a process that the scheduler keeps moving between cores pays for it in cache
 * misses, and how often it moves depends on whatever else runs — noise in its CPU time.
 */
export function pinToCpu(pid: number, cpu: number): void {
  const onMachine = cpu % availableParallelism();
  execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(onMachine), String(pid)], {
    stdio: 'ignore',
  });
}

/** A port on 127.0.0.1 that was free a moment ago, for peers whose config needs one. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** A child process the bench started, stopped with SIGTERM then SIGKILL. */
export interface RunningProcess {
  pid: number;
  child: ChildProcess;
  /** What the process wrote to stdout and stderr so far (last 64 KiB). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Spawns `command` and resolves once `127.0.0.1:<port>` accepts TCP connections; rejects with
 * the process's output if it exits first or is not listening within `timeoutMs`.
 */
export async function spawnListening(
  command: string,
  args: readonly string[],
  port: number,
  { timeoutMs = 10_000, env }: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const running = track(child);
  const started = Date.now();
  while (!(await accepts(port))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${command} exited (${child.exitCode ?? child.signalCode}):\n${running.output()}`,
      );
    }
    if (Date.now() - started > timeoutMs) {
      await running.stop();
      throw new Error(
        `${command} not listening on ${port} after ${timeoutMs} ms:\n${running.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return running;
}

/** A Node child of this bench (src/hosts/*) that answers requests over IPC. */
export interface Host<Ready> extends RunningProcess {
  /** What the host sent when it was ready (addresses and the like). */
  ready: Ready;
  request<Reply>(message: object): Promise<Reply>;
}

/**
 * Forks a host script (a file under dist/hosts/) and waits for its first IPC message. Each
 * request carries an id that the host's reply repeats (see `serveRequests`).
 */
export async function startHost<Ready>(
  script: string,
  args: readonly string[] = [],
  {
    cpu,
    launch,
  }: {
    cpu?: number;
    /** Another program to run node under, e.g. valgrind (see callgrind.ts). */
    launch?: { execPath: string; execArgv: string[] };
  } = {},
): Promise<Host<Ready>> {
  const child = fork(new URL(`./hosts/${script}.js`, import.meta.url), args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    ...launch,
  });
  const running = track(child);
  if (cpu !== undefined) pinToCpu(child.pid!, cpu);
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 0;
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (message) => resolve(message as Ready));
    child.once('exit', (code) =>
      reject(new Error(`host ${script} exited (${code}):\n${running.output()}`)),
    );
  });
  child.on('message', (message: { id: number; error?: string; reply?: unknown }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(`${script}: ${message.error}`));
    else waiter?.resolve(message.reply);
  });
  child.on('exit', () => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`host ${script} exited:\n${running.output()}`));
    pending.clear();
  });
  return {
    ...running,
    ready,
    request<Reply>(message: object) {
      const id = nextId++;
      return new Promise<Reply>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ ...message, id });
      });
    },
  };
}

/** The host side of {@link startHost}: announces `ready`, then answers each request. */
export function serveRequests<Request extends object>(
  ready: object,
  handle: (request: Request) => Promise<unknown> | unknown,
): void {
  process.on('message', async (message: Request & { id: number }) => {
    try {
      process.send!({ id: message.id, reply: await handle(message) });
    } catch (error) {
      process.send!({
        id: message.id,
        error: error instanceof Error ? error.stack : String(error),
      });
    }
  });
  // The bench stops hosts with SIGTERM; exiting at once is all the cleanup they need. A host
  // whose bench has gone (the IPC channel closed) exits too.
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  process.send!(ready);
}

// Every child still running when the bench exits — finished, failed or interrupted — goes with it.
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Makes `child` one of the processes killed when the bench exits, until it exits itself. */
export function own(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function track(child: ChildProcess): RunningProcess {
  own(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65_536);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
