import { cancellationMiddleware } from '@switchyard/middleware-cancellation';
import * as deadline from '@switchyard/middleware-deadline';
import {
  authorizationServerMiddleware,
  peerIdentityServerMiddleware,
} from '@switchyard/middleware-identity';
import { metricsClientMiddleware, metricsServerMiddleware } from '@switchyard/middleware-metrics';
import { createRetryMiddleware } from '@switchyard/middleware-retry';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
import { callScopeServerMiddleware } from '@switchyard/nice-grpc';
import { startTelemetry } from '@switchyard/telemetry';
import { TEST_CLIENT_SPIFFE_ID, TestServiceDefinition } from '@switchyard/testing';
import { deadlineMiddleware as niceGrpcDeadline } from 'nice-grpc-client-middleware-deadline';
import { retryMiddleware as niceGrpcRetry } from 'nice-grpc-client-middleware-retry';
import { composeServerMiddleware } from 'nice-grpc-common';
import {
  openTelemetryClientMiddleware,
  openTelemetryServerMiddleware,
} from 'nice-grpc-opentelemetry';
import { prometheusClientMiddleware, prometheusServerMiddleware } from 'nice-grpc-prometheus';
import {
  grpcJsVariant,
  passThroughClientInterceptor,
  passThroughServerInterceptor,
} from './grpc-js.js';
import { niceGrpcVariant, type Variant } from './variant.js';

/** Every call gets a deadline far enough away never to fire: the cost of carrying one. */
const DEADLINE_MS = 10_000;
const BARE = 'nice-grpc';
const BARE_MTLS = 'nice-grpc, mTLS';

/**
 * The OpenTelemetry SDK as an app starts it, configured by the OTEL_* variables the scenario
 * sets: spans through a batching OTLP/HTTP exporter, metrics pushed over OTLP every few seconds,
 * both to a local sink. Nothing registered means the API's no-op tracer and meter.
 */
const withSdk = async () => {
  await startTelemetry({ prometheus: false });
};
const SDK = 'SDK, batching OTLP export';

const NO_SDK = 'no SDK';
const services = [TestServiceDefinition];

const allowTestClient = {
  rules: [
    { methods: ['switchyard.testing.v1.TestService/*'], identities: [TEST_CLIENT_SPIFFE_ID] },
  ],
};

/**
 * The stacks the middleware scenario compares, each against its baseline: bare nice-grpc (or
 * bare nice-grpc over mTLS, for stacks whose job needs a verified client certificate).
 */
export const variants: Variant[] = [
  niceGrpcVariant({ name: BARE, baseline: BARE }),
  niceGrpcVariant({
    name: 'Switchyard deadline',
    baseline: BARE,
    inboundCall: true,
    server: () => [deadline.deadlineServerMiddleware],
    client: () => [deadline.deadlineClientMiddleware()],
    callOptions: () => ({ deadline: DEADLINE_MS }),
  }),
  niceGrpcVariant({
    name: 'Switchyard cancellation',
    baseline: BARE,
    client: () => [cancellationMiddleware],
  }),
  niceGrpcVariant({
    name: 'Switchyard deadline + cancellation',
    baseline: BARE,
    inboundCall: true,
    server: () => [deadline.deadlineServerMiddleware],
    client: () => [cancellationMiddleware, deadline.deadlineClientMiddleware()],
    callOptions: () => ({ deadline: DEADLINE_MS }),
  }),
  // What any propagation costs a server: the inbound-call interceptor and the call scope, i.e.
  // one AsyncLocalStorage entered per call (on Node 20 its async hooks then ran for every
  // promise of the process; on 22+ it is one context frame per call), and nothing else.
  niceGrpcVariant({
    name: 'Switchyard call scope alone (server)',
    baseline: BARE,
    inboundCall: true,
    server: () => [callScopeServerMiddleware()],
  }),
  niceGrpcVariant({
    name: 'Switchyard retry',
    baseline: BARE,
    client: () => [createRetryMiddleware()],
    callOptions: () => ({ retry: true }),
  }),
  niceGrpcVariant({
    name: 'nice-grpc-client-middleware-deadline',
    baseline: BARE,
    client: () => [niceGrpcDeadline],
    callOptions: () => ({ deadline: DEADLINE_MS }),
  }),
  niceGrpcVariant({
    name: 'nice-grpc-client-middleware-retry',
    baseline: BARE,
    client: () => [niceGrpcRetry],
    callOptions: () => ({ retry: true }),
  }),
  grpcJsVariant({ name: 'grpc-js', baseline: BARE }),
  grpcJsVariant({
    name: 'grpc-js: deadline, retry policy, pass-through interceptors',
    baseline: 'grpc-js',
    clientInterceptors: [passThroughClientInterceptor],
    serverInterceptors: [passThroughServerInterceptor],
    channelOptions: {
      'grpc.service_config': JSON.stringify({
        methodConfig: [
          {
            name: [{ service: 'switchyard.testing.v1.TestService' }],
            retryPolicy: {
              maxAttempts: 2,
              initialBackoff: '1s',
              maxBackoff: '30s',
              backoffMultiplier: 2,
              retryableStatusCodes: ['UNAVAILABLE'],
            },
          },
        ],
      }),
    },
    callOptions: () => ({ deadline: Date.now() + DEADLINE_MS }),
  }),
  niceGrpcVariant({
    name: `Switchyard metrics, ${SDK}`,
    baseline: BARE,
    inboundCall: true,
    setup: withSdk,
    server: () => [metricsServerMiddleware({ services })],
    client: () => [metricsClientMiddleware({ services })],
  }),
  niceGrpcVariant({
    name: `Switchyard tracing, ${SDK}`,
    baseline: BARE,
    inboundCall: true,
    setup: withSdk,
    server: () => [tracingServerMiddleware({ services })],
    client: () => [tracingClientMiddleware({ services })],
  }),
  ...[NO_SDK, SDK].map((mode) =>
    niceGrpcVariant({
      name: `Switchyard metrics + tracing, ${mode}`,
      baseline: BARE,
      inboundCall: true,
      setup: mode === SDK ? withSdk : undefined,
      server: () => [metricsServerMiddleware({ services }), tracingServerMiddleware({ services })],
      client: () => [tracingClientMiddleware({ services }), metricsClientMiddleware({ services })],
    }),
  ),
  niceGrpcVariant({
    name: 'nice-grpc-prometheus',
    baseline: BARE,
    server: () => [prometheusServerMiddleware()],
    client: () => [prometheusClientMiddleware()],
  }),
  niceGrpcVariant({
    name: `nice-grpc-opentelemetry, ${SDK}`,
    baseline: BARE,
    setup: withSdk,
    server: () => [openTelemetryServerMiddleware()],
    client: () => [openTelemetryClientMiddleware()],
  }),
  ...[NO_SDK, SDK].map((mode) =>
    niceGrpcVariant({
      name: `nice-grpc-opentelemetry + nice-grpc-prometheus, ${mode}`,
      baseline: BARE,
      setup: mode === SDK ? withSdk : undefined,
      server: () => [prometheusServerMiddleware(), openTelemetryServerMiddleware()],
      client: () => [openTelemetryClientMiddleware(), prometheusClientMiddleware()],
    }),
  ),
  niceGrpcVariant({ name: BARE_MTLS, baseline: BARE_MTLS, mtls: true }),
  niceGrpcVariant({
    name: 'Switchyard identity + authorization (mTLS)',
    baseline: BARE_MTLS,
    inboundCall: true,
    mtls: true,
    server: () => [
      composeServerMiddleware(
        peerIdentityServerMiddleware(),
        authorizationServerMiddleware({ policy: allowTestClient }),
      ),
    ],
  }),
  niceGrpcVariant({
    name: `Switchyard full stack (mTLS), ${SDK}`,
    baseline: BARE_MTLS,
    inboundCall: true,
    mtls: true,
    setup: withSdk,
    // Servers: first is outermost. Clients: last is outermost (nice-grpc's composition).
    server: () => [
      metricsServerMiddleware({ services }),
      tracingServerMiddleware({ services }),
      deadline.deadlineServerMiddleware,
      composeServerMiddleware(
        peerIdentityServerMiddleware(),
        authorizationServerMiddleware({ policy: allowTestClient }),
      ),
    ],
    client: () => [
      cancellationMiddleware,
      deadline.deadlineClientMiddleware(),
      createRetryMiddleware(),
      tracingClientMiddleware({ services }),
      metricsClientMiddleware({ services }),
    ],
    callOptions: () => ({ deadline: DEADLINE_MS, retry: true }),
  }),
];

export function variantNamed(name: string): Variant {
  const variant = variants.find((candidate) => candidate.name === name);
  if (!variant) throw new Error(`no middleware variant named ${name}`);
  return variant;
}
