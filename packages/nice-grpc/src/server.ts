import { AsyncLocalStorage } from 'node:async_hooks';
import type { PeerCertificate } from 'node:tls';
import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import {
  type Call,
  type CallTransport,
  type Headers,
  type Interceptor,
  type MessageTap,
  type Outcome,
  Status,
} from '@switchyard/core';
import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from 'nice-grpc-common';
import { DEFAULT_FORWARD_HEADERS, runServing, stepsServing } from './call-scope.js';
import { type CallState, callState } from './call-state.js';
import { MetadataHeaders } from './metadata-headers.js';
import { handlerErrorOutcome, methodOf, okOutcome, serverErrorOf } from './outcomes.js';
import { SingleStep, tapSteps } from './steps.js';

/**
 * Extends the handler's call context from the served call as the layers passed it on: how a
 * package hands its own context fields to handlers (a deadline middleware's `deadline`).
 */
export type ContextExtension<Ext> = (served: Call, context: CallContext) => CallContext & Ext;

/** A nice-grpc server middleware that runs `interceptor` on every inbound call. */
export function serverMiddleware<Ext = unknown>(
  interceptor: Interceptor,
  extend?: ContextExtension<Ext>,
): ServerMiddleware<Ext> {
  return (call, context) => interceptServerCall(call, context, interceptor, extend);
}

/**
 * Runs `interceptor` on one inbound nice-grpc call, as a server middleware received it; its
 * `next` runs the rest of the middleware chain and the handler. Every Switchyard server layer of
 * one call shares one served {@link Call}, recognised by the call's request metadata object
 * (which nice-grpc passes unchanged down the chain): what an outer layer established — the
 * caller, a span's trace context — inner layers, the handler and the calls it makes see.
 *
 * The served call's deadline is the one grpc-js parsed from `grpc-timeout`, known on a server
 * created with `withInboundCall()`; its outcome is the status nice-grpc sends (an aborted call's
 * is DEADLINE_EXCEEDED past its deadline, else CANCELLED).
 */
export function interceptServerCall<Request, Response, Ext>(
  call: ServerMiddlewareCall<Request, Response, Ext>,
  context: CallContext,
  interceptor: Interceptor,
  extend?: ContextExtension<Ext>,
): AsyncGenerator<Response, Response | void, undefined> {
  const { served, own } = servedCall(call, context);
  if (call.responseStream) {
    return new StreamingServerCall(
      call,
      context,
      interceptor,
      extend,
      served,
      own,
    ) as unknown as AsyncGenerator<Response, Response | void, undefined>;
  }
  const unary = new UnaryServerCall(call, context, interceptor, extend, served, own);
  return new SingleStep(() => unary.result()) as unknown as AsyncGenerator<
    Response,
    Response | void,
    undefined
  >;
}

/**
 * Establishes the served call for the rest of the chain and runs it, for a middleware with no
 * layer of its own (one that only hands the handler something, like a deadline): on a server
 * with the inbound-call interceptor the call's steps are returned as they are — no wrapper, no
 * promise of its own.
 */
export function serveCall<Request, Response, Ext>(
  call: ServerMiddlewareCall<Request, Response, Ext>,
  context: CallContext,
  extend?: ContextExtension<Ext>,
): AsyncGenerator<Response, Response | void, undefined> {
  const { served, own } = servedCall(call, context);
  const next = () =>
    call.next(
      call.request,
      (extend ? extend(served, context) : context) as CallContext & Ext,
    ) as AsyncGenerator<Response, Response | void, undefined>;
  if (own === undefined) return next();
  return stepsServing(served, runServing(served, next));
}

/**
 * The served call of this call: the one an outer layer established, or a new one — recorded in
 * the state the inbound-call interceptor entered, or else returned with a state of its own
 * (`own`) to run in.
 */
function servedCall(
  call: ServerMiddlewareCall<unknown, unknown, unknown>,
  context: CallContext,
): { served: Call; own: CallState | undefined } {
  const state = callState.getStore();
  let served = state?.served;
  let own: CallState | undefined;
  if (
    served === undefined ||
    !(served.transport instanceof ServerTransport && served.transport.serves(context))
  ) {
    const inbound = state !== undefined && state.path === call.method.path ? state.call : undefined;
    const transport = new ServerTransport(context, inbound);
    served = {
      side: 'server',
      method: methodOf(call.method),
      headers: new MetadataHeaders(context.metadata, true),
      deadline: deadlineOf(inbound),
      signal: context.signal,
      peer: undefined,
      inbound: undefined,
      attempt: 1,
      transport,
    };
    // The state the inbound-call interceptor entered for this very call takes the served call;
    // anywhere else (a server without the interceptor, a server inside a handler) it gets a
    // state of its own.
    if (inbound !== undefined && state!.served === undefined) state!.served = served;
    else own = { call: undefined, path: undefined, served };
  }
  return { served, own };
}

function deadlineOf(call: ServerInterceptingCallInterface | undefined): number | undefined {
  if (call === undefined) return undefined;
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

/** What only nice-grpc and grpc-js know of an inbound call. */
class ServerTransport implements CallTransport {
  taps: MessageTap[] | undefined = undefined;
  #forward: Headers | undefined = undefined;

  constructor(
    private readonly context: CallContext,
    private readonly inbound: ServerInterceptingCallInterface | undefined,
  ) {}

  /** Whether this is the transport of the call with this context. */
  serves(context: CallContext): boolean {
    return context.metadata === this.context.metadata;
  }

  readonly replayable = false;

  get peerAddress(): string {
    return this.context.peer;
  }

  get forwardHeaders(): Headers {
    // Picked when first asked for: a call whose handler makes no calls never pays for it.
    if (this.#forward === undefined) {
      const forward = new MetadataHeaders(undefined);
      for (const header of DEFAULT_FORWARD_HEADERS) {
        for (const value of this.context.metadata.getAll(header)) {
          if (typeof value === 'string') forward.append(header, value);
        }
      }
      this.#forward = forward;
    }
    return this.#forward;
  }

  retain(): void {}

  tap(tap: MessageTap): void {
    if (this.taps === undefined) this.taps = [tap];
    else this.taps.push(tap);
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.inbound?.getAuthContext().sslPeerCertificate;
  }
}

/** The part of both kinds of served call that runs the layers and the handler. */
abstract class InterceptedServerCall<Request, Response, Ext> {
  protected running: Promise<Outcome> | undefined = undefined;
  protected committed = false;

  constructor(
    protected readonly call: ServerMiddlewareCall<Request, Response, Ext>,
    protected readonly context: CallContext,
    private readonly interceptor: Interceptor,
    private readonly extend: ContextExtension<Ext> | undefined,
    private readonly served: Call,
    /** The state to run in when the inbound-call interceptor entered none for this call. */
    private readonly own: CallState | undefined,
  ) {}

  protected get taps(): MessageTap[] | undefined {
    return (this.served.transport as ServerTransport).taps;
  }

  protected run(): Promise<Outcome> {
    const own = this.own;
    try {
      return own === undefined
        ? this.interceptor(this.served, this.handle)
        : callState.run(own, () => this.interceptor(this.served, this.handle));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `next` of the innermost layer: the rest of the chain and the handler. */
  private readonly handle = (served: Call): Promise<Outcome> => {
    // Inner layers, the handler and the calls it makes see the call as the layers passed it on.
    const state = this.own ?? callState.getStore();
    if (state !== undefined) state.served = served;
    const context = this.extend ? this.extend(served, this.context) : this.context;
    const steps = this.call.next(this.#request(), context as CallContext & Ext) as AsyncGenerator<
      Response,
      Response | void,
      undefined
    >;
    return this.started(steps);
  };

  protected abstract started(
    steps: AsyncGenerator<Response, Response | void, undefined>,
  ): Promise<Outcome>;

  #request(): Request | AsyncIterable<Request> {
    const { call, taps } = this;
    if (taps === undefined) return call.request;
    if (!call.requestStream) {
      for (const tap of taps) tap.message('request', undefined, call.request);
      return call.request;
    }
    return tapSteps<Request, void>(call.request, (step) => {
      if (!step.done) for (const tap of taps) tap.message('request', undefined, step.value);
    });
  }

  protected delivered(message: Response): void {
    this.committed = true;
    const taps = this.taps;
    if (taps !== undefined) for (const tap of taps) tap.message('response', undefined, message);
  }

  /** The handler's outcome, as nice-grpc reports it. */
  protected failed(error: unknown): Outcome {
    const aborted = this.#aborted();
    const outcome = handlerErrorOutcome(error, this.committed);
    return aborted === undefined ? outcome : { ...outcome, ...aborted };
  }

  protected returned(value: unknown): Outcome {
    const aborted = this.#aborted();
    if (aborted !== undefined) return { ...okOutcome(value, undefined), ...aborted };
    return okOutcome(value, undefined);
  }

  /**
   * Once a call is aborted grpc-js has sent its status already, whatever the handler does next:
   * DEADLINE_EXCEEDED when the client's deadline has passed, else CANCELLED.
   */
  #aborted(): Pick<Outcome, 'status' | 'message' | 'origin'> | undefined {
    if (!this.context.signal.aborted) return undefined;
    const deadline = this.served.deadline;
    return deadline !== undefined && deadline <= Date.now()
      ? { status: Status.DEADLINE_EXCEEDED, message: 'Deadline exceeded', origin: 'proxy' }
      : { status: Status.CANCELLED, message: 'Cancelled by the client', origin: 'client' };
  }

  protected cancelled(): Error {
    const error = new Error('The operation was cancelled');
    error.name = 'AbortError';
    return error;
  }
}

/** A method with a single response: the handler's return value is the outcome's. */
class UnaryServerCall<Request, Response, Ext> extends InterceptedServerCall<
  Request,
  Response,
  Ext
> {
  /** The call's only step: the handler's response, once the layers have decided. */
  result(): Promise<IteratorResult<Response, Response | void>> {
    return this.run().then(this.#result);
  }

  protected started(steps: AsyncGenerator<Response, Response | void, undefined>): Promise<Outcome> {
    return steps.next().then(
      (step) => {
        this.delivered(step.value as Response);
        return this.returned(step.value);
      },
      (error: unknown) => this.failed(error),
    );
  }

  readonly #result = (outcome: Outcome): IteratorResult<Response, Response | void> => {
    if (outcome.status === Status.OK) return { done: true, value: outcome.value as Response };
    throw serverErrorOf(outcome);
  };
}

/** A method with a response stream: the handler's messages are relayed as it yields them. */
class StreamingServerCall<Request, Response, Ext> extends InterceptedServerCall<
  Request,
  Response,
  Ext
> {
  #steps: AsyncGenerator<Response, Response | void, undefined> | undefined = undefined;
  /**
   * Runs a step in the async context the handler was started in — the call state, an
   * OpenTelemetry span made active by a layer — wherever nice-grpc pulls the step from.
   */
  #resume: <R>(fn: () => R) => R = (fn) => fn();
  #end: ((outcome: Outcome) => void) | undefined = undefined;
  #outcome: Outcome | undefined = undefined;
  #wake: (() => void) | undefined = undefined;

  next(): Promise<IteratorResult<Response, Response | void>> {
    if (this.running === undefined) {
      this.running = this.run().then((outcome) => {
        this.#outcome = outcome;
        this.#woken();
        return outcome;
      });
    }
    return this.#step();
  }

  throw(error: unknown): Promise<IteratorResult<Response, Response | void>> {
    const steps = this.#steps;
    if (steps === undefined) return Promise.reject(error);
    return this.#resume(() => steps.throw(error));
  }

  return(value: Response | void): Promise<IteratorResult<Response, Response | void>> {
    const steps = this.#steps;
    // nice-grpc closes the stream when the call ends early: its client cancelled.
    this.#ended(this.failed(this.cancelled()));
    if (steps === undefined) return Promise.resolve({ done: true, value });
    return this.#resume(() => steps.return(value));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  protected started(steps: AsyncGenerator<Response, Response | void, undefined>): Promise<Outcome> {
    this.#steps = steps;
    this.#resume = AsyncLocalStorage.snapshot();
    const ended = new Promise<Outcome>((resolve) => {
      this.#end = resolve;
    });
    this.#woken();
    return ended;
  }

  #step(): Promise<IteratorResult<Response, Response | void>> {
    const steps = this.#steps;
    if (steps !== undefined && this.#end !== undefined) {
      return this.#resume(() => steps.next()).then(
        (step) => {
          if (!step.done) {
            this.delivered(step.value);
            return step;
          }
          this.#ended(this.returned(step.value));
          return this.#finish();
        },
        (error: unknown) => {
          this.#ended(this.failed(error));
          return this.#finish();
        },
      );
    }
    return this.#finish();
  }

  #finish(): Promise<IteratorResult<Response, Response | void>> {
    const outcome = this.#outcome;
    if (outcome === undefined) {
      return new Promise<void>((resolve) => {
        this.#wake = resolve;
      }).then(() => this.#step());
    }
    if (outcome.status === Status.OK) return Promise.resolve({ done: true, value: undefined });
    return Promise.reject(serverErrorOf(outcome));
  }

  #ended(outcome: Outcome): void {
    const end = this.#end;
    this.#end = undefined;
    end?.(outcome);
  }

  #woken(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
