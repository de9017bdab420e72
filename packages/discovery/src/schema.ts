import { parseDuration } from '@switchyard/core';
import { z } from 'zod';
import { type Endpoint, parseEndpointEntry } from './endpoint.js';

/** `"host:port"` or `{ address: "host:port", labels: { … } }`, parsed into an {@link Endpoint}. */
export const endpointEntrySchema = z
  .union(
    [
      z.string(),
      z.strictObject({
        address: z.string(),
        labels: z.record(z.string(), z.string()).optional(),
      }),
    ],
    { error: 'expected "host:port" or { address: "host:port", labels: { … } }' },
  )
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
    .flatMap((issue) => innermost(issue, prefix))
    .map(({ path, message }) => `${keyPath(path) || '(top level)'}: ${message}`)
    .join('; ');
}

/**
 * A union's own message says only that no branch matched; when the input had the shape of one
 * branch (its issues lie deeper than the union), that branch's issues say what is wrong.
 */
function innermost(
  issue: z.core.$ZodIssue,
  prefix: readonly PropertyKey[],
): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    const deeper = issue.errors.filter((branch) => branch.some((inner) => inner.path.length > 0));
    if (deeper.length === 1) return deeper[0]!.flatMap((inner) => innermost(inner, path));
  }
  return [{ path, message: issue.message }];
}

function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}

/**
 * A duration with its unit (core's `parseDuration`), in milliseconds, for config files (the proxy's too). A bare number is refused:
 * `interval: 5` would be read as 5 ms by some and 5 s by others.
 */
export const durationSchema = z
  .string({ error: 'expected a duration with its unit, e.g. "5s" or "250ms"' })
  .transform((text, context) => {
    const ms = parseDuration(text);
    if (ms !== undefined && ms > 0) return ms;
    context.addIssue({
      code: 'custom',
      message: `"${text}" is not a positive duration like "5s" or "250ms"`,
    });
    return z.NEVER;
  });
