import type { Channel } from 'node:diagnostics_channel';
import type { Attributes, Meter } from '@opentelemetry/api';
import {
  authorizationDecisionChannel,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
  type Status,
  statusName,
} from '@switchyard/core';
import type { CallInstruments, InstrumentOptions } from './instruments.js';

/** One counter of events, in both vocabularies. */
interface EventCounter<Event> {
  channel: Channel<Event>;
  goName: string;
  otelName: string;
  description: string;
  /** The OpenTelemetry unit; go-grpc-prometheus counters have none. */
  unit: string;
  /** Labels of an event besides its method's. */
  labels: (event: Event) => Attributes;
}

function countEvents<Event extends { method: string }>(
  meter: Meter,
  instruments: CallInstruments,
  go: boolean,
  { channel, goName, otelName, description, unit, labels }: EventCounter<Event>,
): void {
  const counter = meter.createCounter(go ? goName : otelName, {
    description,
    unit: go ? undefined : unit,
  });
  channel.subscribe((message) => {
    const event = message as Event;
    counter.add(1, { ...instruments.eventAttributes(event.method), ...labels(event) });
  });
}

/**
 * Counts what other Switchyard middleware report on node:diagnostics_channel (see core's
 * events.ts): retries and hedges and retry-budget refusals on clients, authorization decisions
 * on servers. Subscribed once per set of instruments, so each event is counted once per meter
 * and vocabulary however many middleware share them.
 */
export function countClientEvents(
  meter: Meter,
  instruments: CallInstruments,
  { naming, semconv }: InstrumentOptions,
): void {
  const go = naming === 'go-grpc-prometheus';
  const status = (code: Status): Attributes => {
    if (go) return { grpc_code: statusName(code) };
    if (naming === 'grpc') return { 'grpc.status': statusName(code) };
    return semconv.stable
      ? { 'rpc.response.status_code': statusName(code) }
      : { 'rpc.grpc.status_code': code };
  };
  countEvents(meter, instruments, go, {
    channel: retryAttemptChannel,
    goName: 'grpc_client_retry_attempts_total',
    otelName: 'rpc.client.retry.attempts',
    description: 'Retries, transparent retries and hedges started, by the status that caused them.',
    unit: '{attempt}',
    labels: (event) => ({
      ...(event.code === undefined ? {} : status(event.code)),
      [go ? 'retry_kind' : 'rpc.retry.kind']: event.kind,
    }),
  });
  countEvents(meter, instruments, go, {
    channel: retryBudgetExhaustedChannel,
    goName: 'grpc_client_retry_budget_exhausted_total',
    otelName: 'rpc.client.retry.budget_exhausted',
    description: 'Retries refused by the retry budget; the call failed with its original status.',
    unit: '{call}',
    labels: (event) => status(event.code),
  });
}

export function countServerEvents(
  meter: Meter,
  instruments: CallInstruments,
  { naming }: InstrumentOptions,
): void {
  const go = naming === 'go-grpc-prometheus';
  countEvents(meter, instruments, go, {
    channel: authorizationDecisionChannel,
    goName: 'grpc_server_authorization_decisions_total',
    otelName: 'rpc.server.authorization.decisions',
    description: 'Authorization decisions on inbound calls: allow, deny or unauthenticated.',
    unit: '{call}',
    // The caller's identity is deliberately not a label: it is unbounded.
    labels: (event) => ({ [go ? 'decision' : 'rpc.authorization.decision']: event.decision }),
  });
}
