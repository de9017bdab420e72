import { describe, expect, it } from 'vitest';
import {
  isServerError,
  methodRecognizer,
  OTHER_METHOD,
  parseGrpcTarget,
  rpcSemconvStability,
  Status,
  serviceMethods,
  statusName,
} from '../src/index.js';

const tsProtoLike = {
  name: 'Greeter',
  fullName: 'demo.v1.Greeter',
  methods: {
    sayHello: {
      name: 'SayHello',
      requestStream: false,
      responseStream: true,
      requestType: {
        encode: (message: unknown) => ({
          finish: () => new TextEncoder().encode(JSON.stringify(message)),
        }),
        fromPartial: (object: unknown) => ({ name: '', ...(object as object) }),
      },
      responseType: {
        encode: () => ({ finish: () => new Uint8Array(3) }),
      },
    },
  },
};

describe('serviceMethods', () => {
  it('reads ts-proto generic definitions, sizing the completed message', () => {
    const [method] = serviceMethods(tsProtoLike);
    expect(method?.path).toBe('/demo.v1.Greeter/SayHello');
    expect(method?.responseStream).toBe(true);
    expect(method?.requestSize({})).toBe(JSON.stringify({ name: '' }).length);
    expect(method?.responseSize({})).toBe(3);
  });
});

// A grpc-js (or nice-grpc) service definition: methods by name, each with its path and serializers.
const json = (message: unknown) => new TextEncoder().encode(JSON.stringify(message));
const grpcJsLike = {
  unary: {
    path: '/test.Json/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: json,
    responseSerialize: json,
  },
};

describe('methodRecognizer', () => {
  it('names only the configured services when given, everything else is _OTHER', () => {
    const recognize = methodRecognizer({ services: [grpcJsLike, tsProtoLike] });
    expect(recognize('/test.Json/Unary')).toMatchObject({
      fullName: 'test.Json/Unary',
      service: 'test.Json',
      method: 'Unary',
      recognized: true,
    });
    expect(recognize('/demo.v1.Greeter/SayHello').fullName).toBe('demo.v1.Greeter/SayHello');
    expect(recognize('/test.Json/Nope')).toBe(OTHER_METHOD);
    expect(recognize('/evil.Service/x1')).toBe(OTHER_METHOD);
  });

  it('without services, names methods as seen up to maxMethods, then _OTHER', () => {
    const recognize = methodRecognizer({ maxMethods: 3 });
    for (let i = 0; i < 3; i++) expect(recognize(`/a.S/M${i}`).recognized).toBe(true);
    expect(recognize('/a.S/M3')).toBe(OTHER_METHOD);
    // Methods named before the cap keep their names.
    expect(recognize('/a.S/M1').fullName).toBe('a.S/M1');
  });

  it('reports malformed paths as _OTHER without learning them', () => {
    const recognize = methodRecognizer({ maxMethods: 1 });
    for (const path of ['', '/', 'a.S/M', '/a.S', '/a.S/M/extra', '//M']) {
      expect(recognize(path)).toBe(OTHER_METHOD);
    }
    expect(recognize('/a.S/M').recognized).toBe(true);
  });

  it('refuses a maxMethods that is not a count', () => {
    for (const maxMethods of [-1, 1.5, Number.NaN]) {
      expect(() => methodRecognizer({ maxMethods })).toThrow(
        /^maxMethods must be a non-negative integer/,
      );
    }
  });

  it('keeps one name object per method, so attribute caches can key on it', () => {
    const recognize = methodRecognizer();
    expect(recognize('/a.S/M')).toBe(recognize('/a.S/M'));
  });
});

describe('rpcSemconvStability', () => {
  it.each([
    [undefined, { legacy: true, stable: false }],
    ['', { legacy: true, stable: false }],
    ['http', { legacy: true, stable: false }],
    ['rpc', { legacy: false, stable: true }],
    ['http, rpc', { legacy: false, stable: true }],
    ['rpc/dup', { legacy: true, stable: true }],
    ['rpc,rpc/dup', { legacy: true, stable: true }],
  ])('OTEL_SEMCONV_STABILITY_OPT_IN=%j', (value, expected) => {
    expect(rpcSemconvStability(value)).toEqual(expected);
  });
});

describe('isServerError', () => {
  it('counts only the six server-fault codes of the gRPC conventions', () => {
    const faults = Object.values(Status).filter(isServerError).map(statusName);
    expect(faults).toEqual([
      'UNKNOWN',
      'DEADLINE_EXCEEDED',
      'UNIMPLEMENTED',
      'INTERNAL',
      'UNAVAILABLE',
      'DATA_LOSS',
    ]);
  });
});

describe('parseGrpcTarget', () => {
  it.each([
    ['grpc.io:50051', 'grpc.io', 50051],
    ['dns://1.2.3.4/grpc.io:50051', 'grpc.io', 50051],
    ['dns:///grpc.io:50051', 'grpc.io', 50051],
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['[::1]:50051', '::1', 50051],
    ['unix:///run/containerd/containerd.sock', '/run/containerd/containerd.sock', undefined],
    ['unix:/tmp/s.sock', '/tmp/s.sock', undefined],
    ['zk://zookeeper:2181/my-server', 'zk://zookeeper:2181/my-server', undefined],
    [
      'ipv4:198.51.100.123:50051,198.51.100.124:50051',
      'ipv4:198.51.100.123:50051,198.51.100.124:50051',
      undefined,
    ],
    ['backend', 'backend', undefined],
  ])('%s', (target, address, port) => {
    expect(parseGrpcTarget(target)).toEqual({ address, port });
  });
});
