import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CallOutcome,
  callTestService,
  createConnectClient,
  createTestClient,
  PYTHON_GRPC_MISSING,
  pythonGrpcAvailable,
  type RunningConnectServer,
  type RunningPythonServer,
  type RunningTestServer,
  runPythonClient,
  startConnectServer,
  startPythonServer,
  startServer,
  type TestClient,
} from '../src/index.js';
import { INTEROP_CASES, type InteropCase } from './support/cases.js';
import { comparable } from './support/comparable.js';
import { callWithConnect } from './support/connect-call.js';

// Every peer answers as the same backend, so responses compare field for field.
const BACKEND = 'peer';

const pythonAvailable = await pythonGrpcAvailable();
if (!pythonAvailable) console.warn(`Skipping Python peer tests. ${PYTHON_GRPC_MISSING}`);

let nice: RunningTestServer;
let connect: RunningConnectServer;
let niceClient: TestClient;
/** What the nice-grpc client gets from the nice-grpc server: the reference answers. */
const reference = new Map<string, CallOutcome>();

beforeAll(async () => {
  [nice, connect] = await Promise.all([
    startServer({ backend: BACKEND }),
    startConnectServer({ backend: BACKEND }),
  ]);
  niceClient = createTestClient(nice.address);
  for (const { name, call } of INTEROP_CASES) {
    reference.set(name, await callTestService(niceClient.client, call));
  }
});

afterAll(async () => {
  niceClient?.close();
  await Promise.all([nice?.stop(), connect?.stop()]);
});

function referenceFor(testCase: InteropCase): ReturnType<typeof comparable> {
  const outcome = reference.get(testCase.name)!;
  expect(outcome.responses).toHaveLength(testCase.expected.responses);
  expect(outcome.status.code).toBe(testCase.expected.code);
  return comparable(outcome);
}

describe('the fixture service answers the same test requests identically through nice-grpc and through the connect-node peer', () => {
  let client: TestClient;
  beforeAll(() => {
    client = createTestClient(connect.address);
  });
  afterAll(() => client.close());

  it.each(INTEROP_CASES)('$name', async (testCase) => {
    const outcome = await callTestService(client.client, testCase.call);
    expect(comparable(outcome)).toEqual(referenceFor(testCase));
  });
});

describe.skipIf(!pythonAvailable)(
  'the fixture service answers the same test requests identically through nice-grpc and through the Python grpcio peer',
  () => {
    let python: RunningPythonServer;
    let client: TestClient;
    beforeAll(async () => {
      python = await startPythonServer({ backend: BACKEND });
      client = createTestClient(python.address);
    });
    afterAll(async () => {
      client?.close();
      await python?.stop();
    });

    it.each(INTEROP_CASES)('$name', async (testCase) => {
      const outcome = await callTestService(client.client, testCase.call);
      expect(comparable(outcome)).toEqual(referenceFor(testCase));
    });
  },
);

describe('foreign clients calling the nice-grpc fixture get the same answers', () => {
  describe('connect-node client', () => {
    let client: ReturnType<typeof createConnectClient>;
    beforeAll(() => {
      client = createConnectClient(nice.address);
    });
    afterAll(() => client.close());

    it.each(INTEROP_CASES)('$name', async (testCase) => {
      const outcome = await callWithConnect(client.client, testCase.call);
      expect(comparable(outcome)).toEqual(referenceFor(testCase));
    });
  });

  describe.skipIf(!pythonAvailable)('Python grpcio client', () => {
    it.each(INTEROP_CASES)('$name', async (testCase) => {
      const outcome = await runPythonClient(nice.address, testCase.call);
      expect(comparable(outcome)).toEqual(referenceFor(testCase));
    });
  });
});
