import { Status } from './status.js';

/**
 * How telemetry names RPC methods, statuses and servers — shared by middleware-metrics and
 * middleware-tracing so that a call's metrics and its spans always agree. Names follow the
 * OpenTelemetry RPC semantic conventions (semconv v1.37 "legacy" and v1.44 "stable").
 */

/** The value the conventions reserve for a method the instrumentation does not recognize. */
export const OTHER_METHOD_NAME = '_OTHER';

/** A method as telemetry reports it. */
export interface RpcMethodName {
  /** `package.Service/Method`, or `_OTHER`: the stable conventions' `rpc.method` and span name. */
  readonly fullName: string;
  /** `package.Service`, or `_OTHER` (legacy `rpc.service`). */
  readonly service: string;
  /** `Method`, or `_OTHER` (legacy `rpc.method`). */
  readonly method: string;
  /** The path the call used, `/package.Service/Method`, or `_OTHER`. */
  readonly path: string;
  readonly recognized: boolean;
}

/** What every unrecognized method is reported as. */
export const OTHER_METHOD: RpcMethodName = Object.freeze({
  fullName: OTHER_METHOD_NAME,
  service: OTHER_METHOD_NAME,
  method: OTHER_METHOD_NAME,
  path: OTHER_METHOD_NAME,
  recognized: false,
});

/** A method of a service definition, in any of the shapes nice-grpc accepts. */
export interface MethodDefinitionLike {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** Serialized size of one request message, for message-size metrics. */
  readonly requestSize: (message: unknown) => number;
  /** Serialized size of one response message. */
  readonly responseSize: (message: unknown) => number;
}

interface SerializingMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: unknown): Uint8Array;
  responseSerialize(value: unknown): Uint8Array;
}
interface TsProtoMessageType {
  encode(message: unknown): { finish(): Uint8Array };
  fromPartial?(object: unknown): unknown;
}
interface TsProtoService {
  fullName: string;
  methods: Record<
    string,
    {
      name: string;
      requestStream: boolean;
      responseStream: boolean;
      requestType: TsProtoMessageType;
      responseType: TsProtoMessageType;
    }
  >;
}

/**
 * A nice-grpc, grpc-js or ts-proto (`outputServices=generic-definitions`) service definition,
 * described structurally so core needs neither nice-grpc nor generated code.
 */
export type ServiceDefinitionLike = TsProtoService | Record<string, SerializingMethod>;

/** Lists the methods of a service definition with their paths and message sizers. */
export function serviceMethods(definition: ServiceDefinitionLike): MethodDefinitionLike[] {
  if (typeof definition.fullName === 'string' && typeof definition.methods === 'object') {
    const { fullName, methods } = definition as TsProtoService;
    return Object.values(methods).map((method) => ({
      path: `/${fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSize: tsProtoSizer(method.requestType),
      responseSize: tsProtoSizer(method.responseType),
    }));
  }
  return Object.values(definition as Record<string, SerializingMethod>).map((method) => ({
    path: method.path,
    requestStream: method.requestStream,
    responseStream: method.responseStream,
    requestSize: (message) => method.requestSerialize(message).byteLength,
    responseSize: (message) => method.responseSerialize(message).byteLength,
  }));
}

// nice-grpc clients accept partial messages and complete them with `fromPartial` before
// encoding; sizing does the same so it measures what goes on the wire.
function tsProtoSizer(type: TsProtoMessageType): (message: unknown) => number {
  return (message) =>
    type.encode(type.fromPartial ? type.fromPartial(message) : message).finish().byteLength;
}

/** Options of {@link methodRecognizer}. */
export interface MethodRecognitionOptions {
  /**
   * The services whose methods are reported by name; any other method is `_OTHER`. Without it,
   * every well-formed method seen is reported by name (nice-grpc only runs middleware for
   * methods of a definition the app registered or compiled in), up to {@link maxMethods}.
   */
  services?: Iterable<ServiceDefinitionLike>;
  /** Without `services`: how many distinct methods get their own name before the rest are `_OTHER`. Default 200. */
  maxMethods?: number;
}

const METHOD_PATH = /^\/([^/]+)\/([^/]+)$/;

/**
 * Returns a function that names a method path for telemetry, with bounded cardinality: at most
 * the configured services' methods (or `maxMethods` learned ones) plus `_OTHER`.
 */
export function methodRecognizer({
  services,
  maxMethods = 200,
}: MethodRecognitionOptions = {}): (path: string) => RpcMethodName {
  if (!Number.isInteger(maxMethods) || maxMethods < 0) {
    throw new TypeError(`maxMethods must be a non-negative integer, got ${maxMethods}`);
  }
  const names = new Map<string, RpcMethodName>();
  const fixed = services !== undefined;
  if (services !== undefined) {
    for (const service of services) {
      for (const { path } of serviceMethods(service)) {
        const name = nameOf(path);
        if (name !== undefined) names.set(path, name);
      }
    }
  }
  let warned = false;
  return (path) => {
    const known = names.get(path);
    if (known !== undefined || fixed) return known ?? OTHER_METHOD;
    if (names.size >= maxMethods) {
      if (!warned) {
        warned = true;
        process.emitWarning(
          `Telemetry saw more than ${maxMethods} gRPC methods; further ones are reported as _OTHER. Pass \`services\` to name exactly the methods you serve or call.`,
          { code: 'SWITCHYARD_METHOD_CARDINALITY' },
        );
      }
      return OTHER_METHOD;
    }
    const name = nameOf(path);
    if (name === undefined) return OTHER_METHOD;
    names.set(path, name);
    return name;
  };
}

function nameOf(path: string): RpcMethodName | undefined {
  const match = METHOD_PATH.exec(path);
  if (match === null) return undefined;
  const [, service, method] = match as unknown as [string, string, string];
  return Object.freeze({
    fullName: `${service}/${method}`,
    service,
    method,
    path,
    recognized: true,
  });
}

/** Which generation of the RPC conventions to emit. */
export interface RpcSemconvStability {
  /** semconv ≤ v1.37: `rpc.server.duration` in ms, `rpc.system`, `rpc.grpc.status_code`. */
  readonly legacy: boolean;
  /** semconv v1.44: `rpc.server.call.duration` in s, `rpc.system.name`, `rpc.response.status_code`. */
  readonly stable: boolean;
}

/**
 * Reads `OTEL_SEMCONV_STABILITY_OPT_IN` as the conventions prescribe: `rpc` emits only the stable
 * conventions, `rpc/dup` both (and wins over `rpc`), anything else only the legacy ones.
 */
export function rpcSemconvStability(
  optIn: string | undefined = process.env.OTEL_SEMCONV_STABILITY_OPT_IN,
): RpcSemconvStability {
  const values = (optIn ?? '').split(',').map((value) => value.trim().toLowerCase());
  if (values.includes('rpc/dup')) return { legacy: true, stable: true };
  if (values.includes('rpc')) return { legacy: false, stable: true };
  return { legacy: true, stable: false };
}

const SERVER_FAULTS = new Set<Status>([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/**
 * Whether a status means the call failed from the server's point of view. The gRPC conventions
 * count only these six as server errors (a NOT_FOUND is the server doing its job); on the client
 * every status but OK is an error.
 */
export function isServerError(code: Status): boolean {
  return SERVER_FAULTS.has(code);
}

/** Where a client sends its calls, as the conventions' `server.address` and `server.port`. */
export interface ServerEndpoint {
  readonly address: string;
  readonly port: number | undefined;
}

/**
 * Parses a gRPC target (naming.md) into `server.address`/`server.port` the way the gRPC
 * conventions' examples do: `host:port` and `dns:[//authority/]host:port` give the host and
 * port, `unix:` gives the socket path, and anything else (a host without a port, several
 * addresses, other resolvers) is reported whole, without a port.
 */
export function parseGrpcTarget(target: string): ServerEndpoint {
  const unix = /^unix:(?:\/\/)?(\/.*)$/.exec(target);
  if (unix !== null) return { address: unix[1] as string, port: undefined };
  const dns = /^dns:(?:\/\/[^/]*\/)?(.*)$/.exec(target);
  const hostPort = dns !== null ? (dns[1] as string) : target;
  const match = /^(?:\[([^\]]+)\]|([^:/,[\]]+)):(\d{1,5})$/.exec(hostPort);
  if (match !== null) {
    return { address: (match[1] ?? match[2]) as string, port: Number(match[3]) };
  }
  return { address: target, port: undefined };
}
