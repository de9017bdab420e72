import {
  type Call,
  type CallMethod,
  compileGlob,
  type Outcome,
  proxyOutcome,
  Status,
} from '@switchyard/core';
import type { CompiledPolicy } from '@switchyard/middleware-identity/interceptors';
import type { RetryBudgetOptions, RetryPolicy } from '@switchyard/middleware-retry/interceptors';
import type { Service } from './service.js';

/**
 * Where the calls to some methods go and with what policy: a typed object handed to the layers
 * that need it (linkerd2-proxy's per-target parameters), not a global bag of options.
 */
export interface Route {
  /** For logs and errors: `routes[2]`, or the name the config gives. */
  readonly name: string;
  /**
   * `package.Service/Method` globs (a leading `/` is optional): `*` within a service or method
   * name, `**` alone for every method.
   */
  readonly methods: readonly string[];
  /** The upstream's name. */
  readonly upstream: string;
  /**
   * The most any call gets, in ms, and what a call without a deadline gets (as Envoy's
   * `max_grpc_timeout`); the upstream sees `grpc-timeout` = this or the client's budget minus
   * the propagation offset, whichever is less. Default: no cap.
   */
  readonly timeoutMs: number | undefined;
  /**
   * The methods may be sent again: retried on the retry policy's codes, hedged. Without it only
   * calls an upstream refused unprocessed are sent again (transparent retry).
   */
  readonly idempotent: boolean;
  /** How calls are retried or hedged; the proxy's transparent replay at the least. */
  readonly retry: RetryPolicy;
  /** The route's own retry budget (each route has one). */
  readonly retryBudget: RetryBudgetOptions | undefined;
  /** Who may call the route's methods; no policy lets every caller through. */
  readonly authorization: CompiledPolicy | undefined;
  /** Calls in flight on the route; more fail at once with RESOURCE_EXHAUSTED. No limit if absent. */
  readonly maxConcurrentCalls: number | undefined;
  /** Larger request messages end the call with RESOURCE_EXHAUSTED. No limit if absent. */
  readonly maxRequestMessageBytes: number | undefined;
}

/** A route and the service its calls go to. */
export interface RouteService {
  readonly route: Route;
  readonly service: Service;
}

/**
 * The route of each call: the first whose method globs match its path, decided once per method.
 * A call no route matches is UNIMPLEMENTED, as a server without the method answers.
 */
class Router implements Service {
  readonly #routes: readonly { matches: (path: string) => boolean; service: Service }[];
  readonly #upstreams: readonly Service[];
  readonly #chosen = new WeakMap<CallMethod, Service | null>();

  constructor(routes: readonly RouteService[], upstreams: readonly Service[]) {
    this.#routes = routes.map(({ route, service }) => {
      const globs = route.methods.map((method) => compileGlob(method.replace(/^\//, '')));
      return { matches: (path: string) => globs.some((glob) => glob(path)), service };
    });
    this.#upstreams = upstreams;
  }

  isReady(): boolean {
    return true; // admission, per upstream, queues or fails the call
  }

  call(call: Call): Promise<Outcome> {
    let service = this.#chosen.get(call.method);
    if (service === undefined) {
      const path = call.method.path.replace(/^\//, '');
      service = this.#routes.find((route) => route.matches(path))?.service ?? null;
      this.#chosen.set(call.method, service);
    }
    if (service === null) {
      return Promise.resolve(
        proxyOutcome(Status.UNIMPLEMENTED, `no route of the proxy serves ${call.method.path}`),
      );
    }
    return service.call(call);
  }

  onReady(): void {}

  notReadyReason(): string {
    return '';
  }

  async close(): Promise<void> {
    await Promise.all(this.#upstreams.map((upstream) => upstream.close()));
  }
}

/** The service that sends each call along its route. */
export function router(routes: readonly RouteService[], upstreams: readonly Service[]): Service {
  return new Router(routes, upstreams);
}
