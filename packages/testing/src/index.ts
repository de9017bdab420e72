export {
  type CallOutcome,
  callTestService,
  type TestCall,
  type TestMethod,
} from './call.js';
export { CleanupSteps } from './cleanup.js';
export {
  createTestClient,
  type TestClient,
  type TestClientOptions,
} from './client.js';
export {
  type ConnectClientTls,
  type ConnectServerOptions,
  type ConnectTestClient,
  createConnectClient,
  type RunningConnectServer,
  startConnectServer,
} from './connect.js';
export {
  TestRequest,
  TestResponse,
  type TestServiceClient,
  TestServiceDefinition,
  type TestServiceImplementation,
} from './gen/nice/switchyard/testing/v1/test.js';
export {
  type AttributeValue,
  type OtlpReceiver,
  type ReceivedHistogram,
  type ReceivedSpan,
  startOtlpReceiver,
} from './otlp-receiver.js';
export { generateTestPki, TEST_CLIENT_SPIFFE_ID, type TestPki } from './pki.js';
export * from './prometheus-text.js';
export {
  PYTHON,
  PYTHON_GRPC_MISSING,
  PYTHON_PATH,
  type PythonClientOptions,
  type PythonServerOptions,
  pythonGrpcAvailable,
  type RunningPythonServer,
  runPythonClient,
  startPythonServer,
} from './python.js';
export {
  type RunningTestServer,
  type RunningTestServers,
  type StartServerOptions,
  type StartServersOptions,
  startServer,
  startServers,
  type TestServerOptions,
} from './server.js';
export { createTestServiceImpl, type TestServiceImplOptions } from './service.js';
