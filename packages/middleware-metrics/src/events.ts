import type { Attributes, Meter } from '@opentelemetry/api';
import {
  type AuthorizationDecisionEvent,
  authorizationDecisionChannel,
  type RetryAttemptEvent,
  type RetryBudgetExhaustedEvent,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
  type Status,
  statusName,
} from '@switchyard/core';
import type { CallInstruments, InstrumentOptions } from './instruments.js';

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
    return semconv.stable
      ? { 'rpc.response.status_code': statusName(code) }
      : { 'rpc.grpc.status_code': code };
  };
  const attempts = meter.createCounter(
    go ? 'grpc_client_retry_attempts_total' : 'rpc.client.retry.attempts',
    {
      description:
        'Retries, transparent retries and hedges started, by the status that caused them.',
      unit: go ? undefined : '{attempt}',
    },
  );
  const exhausted = meter.createCounter(
    go ? 'grpc_client_retry_budget_exhausted_total' : 'rpc.client.retry.budget_exhausted',
    {
      description: 'Retries refused by the retry budget; the call failed with its original status.',
      unit: go ? undefined : '{call}',
    },
  );
  retryAttemptChannel.subscribe((message) => {
    const event = message as RetryAttemptEvent;
    attempts.add(1, {
      ...instruments.eventAttributes(event.method),
      ...(event.code === undefined ? {} : status(event.code)),
      [go ? 'retry_kind' : 'rpc.retry.kind']: event.kind,
    });
  });
  retryBudgetExhaustedChannel.subscribe((message) => {
    const event = message as RetryBudgetExhaustedEvent;
    exhausted.add(1, { ...instruments.eventAttributes(event.method), ...status(event.code) });
  });
}

export function countServerEvents(
  meter: Meter,
  instruments: CallInstruments,
  { naming }: InstrumentOptions,
): void {
  const go = naming === 'go-grpc-prometheus';
  const decisions = meter.createCounter(
    go ? 'grpc_server_authorization_decisions_total' : 'rpc.server.authorization.decisions',
    {
      description: 'Authorization decisions on inbound calls: allow, deny or unauthenticated.',
      unit: go ? undefined : '{call}',
    },
  );
  authorizationDecisionChannel.subscribe((message) => {
    const event = message as AuthorizationDecisionEvent;
    // The caller's identity is deliberately not a label: it is unbounded.
    decisions.add(1, {
      ...instruments.eventAttributes(event.method),
      [go ? 'decision' : 'rpc.authorization.decision']: event.decision,
    });
  });
}
