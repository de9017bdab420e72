import { z } from 'zod';
import { type Endpoint, parseEndpointEntry } from './endpoint.js';

/** `"host:port"` or `{ address: "host:port", labels: { … } }`, parsed into an {@link Endpoint}. */
export const endpointEntrySchema = z
  .union([
    z.string(),
    z.strictObject({
      address: z.string(),
      labels: z.record(z.string(), z.string()).optional(),
    }),
  ])
  .transform((entry, context): Endpoint => {
    try {
      return parseEndpointEntry(entry);
    } catch (error) {
      context.addIssue({
        code: 'custom',
        message: (error as Error).message,
        path: typeof entry === 'string' ? [] : ['address'],
      });
      return z.NEVER;
    }
  });

/** The endpoints file of {@link fileDiscovery}: `{ endpoints: [entry, …] }`. */
export const endpointsDocumentSchema = z.strictObject({ endpoints: z.array(endpointEntrySchema) });

/** Validates a parsed endpoints file; the error names the file and each bad key. */
export function parseEndpointsDocument(document: unknown, file: string): Endpoint[] {
  const result = endpointsDocumentSchema.safeParse(document);
  if (!result.success)
    throw new SyntaxError(`endpoints file ${file}: ${describeIssues(result.error)}`);
  return result.data.endpoints;
}

/** `endpoints[2].address: "x" is not host:port; …` — each issue prefixed by its key path. */
export function describeIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): string {
  return error.issues
    .map((issue) => `${keyPath([...prefix, ...issue.path]) || '(top level)'}: ${issue.message}`)
    .join('; ');
}

function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}
