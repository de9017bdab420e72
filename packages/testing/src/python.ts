import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CallOutcome, singleRequest, type TestCall } from './call.js';
import { TestRequest, TestResponse } from './gen/nice/switchyard/testing/v1/test.js';

const execFileAsync = promisify(execFile);

/**
 * The interpreter that runs Python peers: Debian's python3-grpcio and python3-protobuf are
 * installed for the system interpreter, and a python3 earlier on PATH (pyenv, a venv) usually
 * cannot see them. `SWITCHYARD_PYTHON` overrides it.
 */
export const PYTHON = process.env.SWITCHYARD_PYTHON ?? '/usr/bin/python3';

// Both paths hold from src/ (tests) and from dist/ (built package).
const PEER = fileURLToPath(new URL('../python/peer.py', import.meta.url));

/**
 * The directory of the Python modules the peers share (descriptors.py: message classes from a
 * FileDescriptorSet); put it on `PYTHONPATH` to import them from another package's fixture.
 */
export const PYTHON_PATH = fileURLToPath(new URL('../python', import.meta.url));
const DESCRIPTOR_SET = fileURLToPath(new URL('../dist/test.binpb', import.meta.url));

/**
 * The peers' environment: this process's, without bytecode caches — Python would otherwise write
 * `python/__pycache__/` into the checkout the first time a peer imports descriptors.py.
 */
const PEER_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };

const STARTUP_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** Why Python peer tests are skipped when {@link pythonGrpcAvailable} is false. */
export const PYTHON_GRPC_MISSING = `Python gRPC peer unavailable: ${PYTHON} cannot import grpc and google.protobuf. Install the Debian packages python3-grpcio and python3-protobuf, or point SWITCHYARD_PYTHON at an interpreter that has them.`;

let available: Promise<boolean> | undefined;

/** Whether the Python peer can run: the interpreter exists and imports grpcio and protobuf. */
export function pythonGrpcAvailable(): Promise<boolean> {
  available ??= execFileAsync(PYTHON, ['-c', 'import grpc, google.protobuf'], {
    env: PEER_ENV,
  }).then(
    () => true,
    () => false,
  );
  return available;
}

/** Options for {@link startPythonServer}. */
export interface PythonServerOptions {
  /** Reported as `TestResponse.backend`. */
  backend: string;
}

/** The Python grpcio TestService server, running as a child process. */
export interface RunningPythonServer {
  /** `127.0.0.1:<port>`. */
  address: string;
  port: number;
  backend: string;
  /** Sends SIGTERM and resolves when the process has exited. */
  stop(): Promise<void>;
}

/** Starts the Python grpcio TestService peer on `127.0.0.1:0`. */
export async function startPythonServer({
  backend,
}: PythonServerOptions): Promise<RunningPythonServer> {
  // stdin stays an open pipe: the peer exits when it closes, so it cannot
  // outlive this process even if nobody calls stop().
  const child = spawn(
    PYTHON,
    [PEER, 'serve', '--backend', backend, '--descriptor-set', DESCRIPTOR_SET],
    { stdio: ['pipe', 'pipe', 'pipe'], env: PEER_ENV },
  );
  const stderr = collect(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let port: number;
  try {
    port = await readPort(child, exited, stderr);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    backend,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Options for {@link runPythonClient}. */
export interface PythonClientOptions {
  /** Deadline for the call. */
  timeoutMs?: number;
}

/**
 * Makes `call` against `target` (`host:port`) with the Python grpcio client,
 * a foreign gRPC implementation, and returns its outcome.
 */
export async function runPythonClient(
  target: string,
  call: TestCall,
  options: PythonClientOptions = {},
): Promise<CallOutcome> {
  const streaming = call.method === 'ClientStream' || call.method === 'Bidi';
  const requests = streaming ? call.requests : [singleRequest(call)];
  const json = requests.map((request) => TestRequest.toJSON(TestRequest.fromPartial(request)));
  const args = [
    PEER,
    'call',
    '--descriptor-set',
    DESCRIPTOR_SET,
    '--target',
    target,
    '--method',
    call.method,
    '--json',
    JSON.stringify(streaming ? json : json[0]),
  ];
  for (const [key, value] of Object.entries(call.metadata ?? {})) {
    for (const item of typeof value === 'string' ? [value] : value) {
      args.push('--metadata', `${key}=${item}`);
    }
  }
  if (options.timeoutMs !== undefined) args.push('--timeout', String(options.timeoutMs / 1000));
  const { stdout } = await execFileAsync(PYTHON, args, {
    maxBuffer: 64 * 1024 * 1024,
    env: PEER_ENV,
  });
  return parseOutcome(stdout);
}

function parseOutcome(stdout: string): CallOutcome {
  const responses: TestResponse[] = [];
  for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) {
    const parsed = JSON.parse(line) as { response?: unknown; status?: CallOutcome['status'] };
    if (parsed.status) return { responses, status: parsed.status };
    responses.push(TestResponse.fromJSON(parsed.response));
  }
  throw new Error(`Python client printed no status:\n${stdout}`);
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  return () => text;
}

async function readPort(
  child: ChildProcess,
  exited: Promise<void>,
  stderr: () => string,
): Promise<number> {
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    const first = await Promise.race([
      new Promise<string>((resolve) => lines.once('line', resolve)),
      exited.then(() => {
        throw new Error(`Python peer exited before listening:\n${stderr()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `Python peer did not report a port within ${STARTUP_TIMEOUT_MS} ms:\n${stderr()}`,
              ),
            ),
          STARTUP_TIMEOUT_MS,
        );
      }),
    ]);
    const port = Number(first);
    if (!Number.isInteger(port) || port <= 0) {
      throw new Error(`Python peer printed ${JSON.stringify(first)} instead of a port`);
    }
    return port;
  } finally {
    clearTimeout(timer);
    lines.close();
  }
}
