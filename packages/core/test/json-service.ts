// A service definition with JSON messages, so core's tests run real nice-grpc servers and clients
// without depending on generated code (the fixtures package builds on core, not the reverse).
const json = {
  requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
  responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
};

export interface Probe {
  id: number;
  hop?: number;
  delayMs?: number;
}

export interface Observation {
  id: number;
  seen: (string | number | undefined)[];
  downstream?: Observation[];
}

export const JsonService = {
  unary: { path: '/test.Json/Unary', requestStream: false, responseStream: false, ...json },
  serverStream: {
    path: '/test.Json/ServerStream',
    requestStream: false,
    responseStream: true,
    ...json,
  },
  bidi: { path: '/test.Json/Bidi', requestStream: true, responseStream: true, ...json },
} as const;
