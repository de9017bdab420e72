import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * The built `proxy-kit` binary, as `npx proxy-kit` runs it. A path rather than a package
 * dependency: proxy-kit depends on this package, and turbo refuses a dependency cycle (even
 * through devDependencies). The root test script builds every package before any test runs.
 */
const CLI = fileURLToPath(new URL('../../../proxy-kit/dist/cli.js', import.meta.url));
/** The V8 flags the `proxy-kit` bin runs with (proxy-kit's PROXY_KIT_NODE_FLAGS). */
const NODE_FLAGS = new URL('../../../proxy-kit/dist/node-flags.js', import.meta.url).href;

/** One pino log line of the proxy. */
export interface ProxyLog {
  /** Epoch milliseconds (the proxy logs ISO times). */
  time: number;
  msg: string;
  endpoint?: string;
}

/** Starts `proxy-kit --config <dir>/proxy.yaml` (one worker) and waits until it listens. */
export async function startProxyBinary(dir: string, configYaml: string) {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: npx turbo run build --filter=@switchyard/proxy-kit`);
  }
  const config = join(dir, 'proxy.yaml');
  await writeFile(config, configYaml);
  const { PROXY_KIT_NODE_FLAGS } = (await import(NODE_FLAGS)) as {
    PROXY_KIT_NODE_FLAGS: readonly string[];
  };
  const argv = [...PROXY_KIT_NODE_FLAGS, CLI, '--config', config, '--workers', '1'];
  const child: ChildProcess = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const logs: ProxyLog[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`proxy-kit did not start:\n${output}`)),
      15_000,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      const log = JSON.parse(line) as ProxyLog & { address?: string };
      if (typeof log.time === 'string') log.time = Date.parse(log.time);
      logs.push(log);
      if (log.msg === 'listening') {
        clearTimeout(timer);
        resolve(Number(log.address!.split(':').pop()));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`proxy-kit exited:\n${output}`));
    });
  });
  return {
    port,
    logs,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
