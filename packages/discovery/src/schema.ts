import {
  type ConfigIssue,
  configIssueMessage,
  formatKeyPath,
  locateConfigIssues,
  parseDuration,
} from '@switchyard/core';
import * as v from 'valibot';
import { type Endpoint, parseEndpointEntry } from './endpoint.js';

/** `"host:port"` or `{ address: "host:port", labels: { … } }`, parsed into an {@link Endpoint}. */
export const endpointEntrySchema = v.pipe(
  v.union(
    [
      v.string(),
      v.strictObject({
        address: v.string(),
        labels: v.optional(v.record(v.string(), v.string())),
      }),
    ],
    'expected "host:port" or { address: "host:port", labels: { … } }',
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }): Endpoint => {
    const entry = dataset.value;
    try {
      return parseEndpointEntry(entry);
    } catch (error) {
      addIssue({
        message: (error as Error).message,
        ...(typeof entry === 'string' ? {} : { path: issuePath(entry, ['address']) }),
      });
      return NEVER;
    }
  }),
);

/** The endpoints file of {@link fileDiscovery}: `{ endpoints: [entry, …] }`. */
export const endpointsDocumentSchema = v.strictObject({ endpoints: v.array(endpointEntrySchema) });

/** Validates a parsed endpoints file; the error names the file and each bad key. */
export function parseEndpointsDocument(document: unknown, file: string): Endpoint[] {
  const result = v.safeParse(endpointsDocumentSchema, document, { message: configIssueMessage });
  if (!result.success)
    throw new SyntaxError(`endpoints file ${file}: ${describeIssues(result.issues)}`);
  return result.output.endpoints;
}

/** `endpoints[2].address: "x" is not host:port; …` — each issue prefixed by its key path. */
export function describeIssues(
  issues: readonly ConfigIssue[],
  prefix: readonly PropertyKey[] = [],
): string {
  return locateConfigIssues(issues, prefix)
    .map(({ key, issue }) => `${formatKeyPath(key) || '(top level)'}: ${issue.message}`)
    .join('; ');
}

/**
 * The path of `key` below `input` (valibot's path items), for an issue that a check or transform
 * adds about a value deep inside the one it checks — so the error names that key and its line.
 */
export function issuePath(
  input: unknown,
  key: readonly (string | number)[],
): [v.IssuePathItem, ...v.IssuePathItem[]] {
  const items: v.IssuePathItem[] = [];
  let value = input;
  for (const part of key) {
    const parent = value;
    value = (parent as Record<string | number, unknown>)[part];
    items.push(
      (typeof part === 'number'
        ? { type: 'array', origin: 'value', input: parent as unknown[], key: part, value }
        : {
            type: 'object',
            origin: 'value',
            input: parent as Record<string, unknown>,
            key: part,
            value,
          }) as v.IssuePathItem,
    );
  }
  return items as [v.IssuePathItem, ...v.IssuePathItem[]];
}

/**
 * A duration with its unit (core's `parseDuration`), in milliseconds, for config files (the
 * proxy's too). A bare number is refused: `interval: 5` would be read as 5 ms by some and 5 s by
 * others.
 */
export const durationSchema = v.pipe(
  v.string('expected a duration with its unit, e.g. "5s" or "250ms"'),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ms = parseDuration(dataset.value);
    if (ms !== undefined && ms > 0) return ms;
    addIssue({ message: `"${dataset.value}" is not a positive duration like "5s" or "250ms"` });
    return NEVER;
  }),
);
