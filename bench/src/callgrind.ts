import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * How to start a Node process under valgrind's callgrind, counting nothing until
 * {@link InstructionCounter.start}: `fork(module, args, { execPath, execArgv })`.
 *
 * Callgrind counts instructions in the same number whatever else the machine is doing, where CPU
 * time on a shared 2-core machine scatters by ±10–20% between runs. Threads are counted apart and
 * only the main thread — where JavaScript, and so all the middleware does, runs, with the GC work
 * done there — is read: V8's background threads kept recompiling (TurboFan) long after warm-up,
 * 15–50% of a window's instructions, varying 3× between windows of the same process, whatever
 * the stack. Instructions leave out the kernel and what cache misses cost, so they complement CPU
 * time rather than replace it.
 */
export function callgrindLaunch(outFile: string): { execPath: string; execArgv: string[] } {
  return {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${outFile}`,
      // V8 rewrites the code it generated; valgrind must notice or it runs stale translations.
      '--smc-check=all-non-file',
      '--quiet',
      '--separate-threads=yes',
      process.execPath,
    ],
  };
}

/** Whether valgrind (Debian `valgrind`) can be run here. */
export async function callgrindAvailable(): Promise<boolean> {
  try {
    await run('valgrind', ['--version']);
    await run('callgrind_control', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Counts the instructions a process started with {@link callgrindLaunch} executes. */
export interface InstructionCounter {
  /** Turns counting on and zeroes the count. */
  start(): Promise<void>;
  /** Instructions executed since {@link start} (or the previous `read`). */
  read(): Promise<number>;
}

/**
 * callgrind_control reaches the process through valgrind's gdbserver even while it sleeps in
 * epoll_wait. Each `read` dumps the counts (callgrind writes `<outFile>.<n>-<thread>` and starts
 * again from zero) and takes the `summary:` line of the main thread's (thread 01) dump:
 * instructions (Ir) it executed since the last dump.
 */
export function instructionCounter(pid: number, outFile: string): InstructionCounter {
  const control = (...args: string[]) => run('callgrind_control', [...args, String(pid)]);
  let dumps = 0;
  return {
    async start() {
      await control('--instr=on');
      await control('--zero');
    },
    async read() {
      await control('--dump');
      dumps += 1;
      const file = `${outFile}.${dumps}-01`;
      const summary = /^summary: (\d+)$/m.exec(readFileSync(file, 'utf8'));
      removeCallgrindOutput(`${outFile}.${dumps}-`);
      if (!summary) throw new Error(`no summary line in callgrind dump ${file}`);
      return Number(summary[1]);
    },
  };
}

/** Removes what callgrind wrote for `outFile` (its final dump at exit, any leftovers). */
export function removeCallgrindOutput(outFile: string): void {
  const dir = dirname(outFile);
  const prefix = basename(outFile);
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix)) rmSync(join(dir, name), { force: true });
  }
}
