import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';

/** The final status of a call as grpc-js reports it. */
export interface CallStatus {
  code: number;
  details: string;
  ms: number;
}

/**
 * One unary call with grpc-js to any `path`, with raw bytes as the message: no proto needed, so
 * tests can call paths that a raw backend interprets.
 */
export function grpcUnary(
  address: string,
  path: string,
  options: { deadlineMs?: number; metadata?: Record<string, string> } = {},
): Promise<CallStatus> {
  const client = new Client(address, credentials.createInsecure());
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  const started = performance.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (message: Buffer) => message,
      (message: Buffer) => message,
      Buffer.from('request'),
      metadata,
      options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {},
      (error: ServiceError | null) => {
        client.close();
        resolve({
          code: error ? error.code : status.OK,
          details: error ? error.details : '',
          ms: performance.now() - started,
        });
      },
    );
  });
}
