import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, BatchObservableResult, MeterProvider } from '@opentelemetry/api';
import type { PeakEwma } from '@switchyard/balancer';
import { statusName } from '@switchyard/core';
import {
  type PreaggregatedHistograms,
  type PrometheusMetrics,
  preaggregatedHistograms,
  prometheusMetrics,
} from '@switchyard/telemetry/prometheus';
import type { RunningProxy } from './proxy.js';
import { LATENCY_BOUNDS_MS, ProxyStats } from './stats.js';

/** The admin's metrics: what the proxy is built with, and what `/metrics` serves. */
export interface AdminMetrics {
  /**
   * For the pipeline's metrics layers (`ProxyOptions.meterProvider`): rpc.server.* per method,
   * rpc.client.* per endpoint, retries and retry-budget refusals, as the apps' middleware reports
   * them. Read after the SDK started, when there is one.
   */
  readonly meterProvider: MeterProvider;
  /** For `ProxyOptions.stats`: its routes feed the route duration histogram. */
  readonly stats: ProxyStats;
  /** The reader to give the SDK (`startTelemetry`'s `metricReaders`) when there is one. */
  readonly reader: PrometheusMetrics['reader'];
  /**
   * Where `meterProvider`'s histograms are kept, out of the SDK: for the SDK's other readers
   * (`startTelemetry`'s `histograms`). The reader above collects them already.
   */
  readonly histograms: PreaggregatedHistograms;
  /** Observes the running proxy's routes and endpoints; call once it started. */
  observe(proxy: RunningProxy): void;
  handle(request: IncomingMessage, response: ServerResponse): void;
  shutdown(): Promise<void>;
}

const SECONDS = LATENCY_BOUNDS_MS.map((ms) => ms / 1000);

/**
 * The proxy's own instruments, besides the middleware's: per route and per endpoint calls by
 * status and calls in flight; per route a duration histogram; per endpoint peak-EWMA,
 * readiness, ejection and connections. Counters and gauges are observed from the counters the
 * data plane keeps ({@link ProxyStats}) at scrape time; only the route histogram is recorded per
 * call.
 */
export function adminMetrics(sdk: boolean): AdminMetrics {
  // Three histograms per call (server, endpoint, route): recorded through the SDK they cost
  // the proxy ~30% more CPU per call, kept beside it ~1% (issue 20, bench/).
  const histograms = preaggregatedHistograms();
  const exposition = prometheusMetrics({ ownProvider: !sdk, histograms });
  const meter = () => exposition.meterProvider.getMeter('@switchyard/proxy-kit');
  let routeDuration: ReturnType<ReturnType<typeof meter>['createHistogram']> | undefined;
  // Created on first use: with an SDK, its provider is registered only after this module loads.
  // No histogram of the proxy's own per endpoint: the middleware's rpc.client.call.duration is one,
  // per endpoint (server.address, server.port), and a second would cost every call again.
  const stats = new ProxyStats({
    route: (name) => {
      const attributes = { route: name };
      return (elapsedMs) => {
        routeDuration ??= meter().createHistogram('proxykit.route.duration', {
          description: 'Duration of calls through a route, retries included.',
          unit: 's',
          advice: { explicitBucketBoundaries: SECONDS },
        });
        routeDuration.record(elapsedMs / 1000, attributes);
      };
    },
  });
  return {
    get meterProvider() {
      return exposition.meterProvider;
    },
    stats,
    reader: exposition.reader,
    histograms,
    observe: (proxy) => observeProxy(meter(), proxy),
    handle: exposition.handle,
    shutdown: exposition.shutdown,
  };
}

function observeProxy(meter: ReturnType<MeterProvider['getMeter']>, proxy: RunningProxy): void {
  const routeCalls = meter.createObservableCounter('proxykit.route.calls', {
    description: 'Calls finished through a route, by gRPC status.',
  });
  const routeActive = meter.createObservableUpDownCounter('proxykit.route.active_calls', {
    description: 'Calls in flight through a route.',
  });
  const inboundCalls = meter.createObservableCounter('proxykit.inbound.calls', {
    description: 'Calls the proxy served, whatever their route, by gRPC status.',
  });
  const inboundActive = meter.createObservableUpDownCounter('proxykit.inbound.active_calls', {
    description: 'Calls in flight through the proxy.',
  });
  const clientConnections = meter.createObservableUpDownCounter('proxykit.inbound.connections', {
    description: 'Client connections open.',
  });
  const calls = meter.createObservableCounter('proxykit.endpoint.calls', {
    description: 'Attempts finished at an endpoint, by gRPC status.',
  });
  const active = meter.createObservableUpDownCounter('proxykit.endpoint.active_calls', {
    description: 'Attempts in flight at an endpoint.',
  });
  const ewma = meter.createObservableGauge('proxykit.endpoint.ewma', {
    description: "Peak-EWMA's round-trip estimate of an endpoint (p2c-ewma only).",
    unit: 's',
  });
  const ready = meter.createObservableGauge('proxykit.endpoint.ready', {
    description: '1 when the balancer may pick the endpoint, else 0.',
  });
  const ejected = meter.createObservableGauge('proxykit.endpoint.ejected', {
    description: '1 while the outlier breaker keeps the endpoint out, else 0.',
  });
  const ejections = meter.createObservableCounter('proxykit.endpoint.ejections', {
    description: 'Times the outlier breaker ejected the endpoint.',
  });
  const connections = meter.createObservableUpDownCounter('proxykit.endpoint.connections', {
    description: 'HTTP/2 connections open or opening to the endpoint.',
  });
  const byStatus = (
    result: BatchObservableResult,
    counter: typeof calls,
    statuses: readonly number[],
    attributes: Attributes,
  ) => {
    statuses.forEach((count, code) => {
      if (count > 0)
        result.observe(counter, count, { ...attributes, grpc_status: statusName(code) });
    });
  };
  meter.addBatchObservableCallback(
    (result) => {
      byStatus(result, inboundCalls, proxy.stats.inbound.statuses, {});
      result.observe(inboundActive, proxy.stats.inbound.inFlight);
      result.observe(clientConnections, proxy.clientConnections);
      for (const [name, stats] of proxy.stats.routes()) {
        const attributes = { route: name };
        byStatus(result, routeCalls, stats.statuses, attributes);
        result.observe(routeActive, stats.inFlight, attributes);
      }
      for (const [upstream, balancer] of proxy.upstreams) {
        for (const endpoint of balancer.endpoints()) {
          const { stats, load } = endpoint;
          const attributes = { upstream, endpoint: endpoint.address };
          byStatus(result, calls, stats.statuses, attributes);
          result.observe(active, stats.inFlight, attributes);
          if ('rttMs' in load) result.observe(ewma, (load as PeakEwma).rttMs / 1000, attributes);
          result.observe(ready, endpoint.service.isReady() ? 1 : 0, attributes);
          result.observe(ejected, stats.ejected ? 1 : 0, attributes);
          result.observe(ejections, stats.ejections, attributes);
          result.observe(connections, stats.connections(), attributes);
        }
      }
    },
    [
      inboundCalls,
      inboundActive,
      clientConnections,
      routeCalls,
      routeActive,
      calls,
      active,
      ewma,
      ready,
      ejected,
      ejections,
      connections,
    ],
  );
}
