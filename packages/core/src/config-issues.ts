/**
 * Config-file errors in one voice across packages: `routes[0].retry.codes[1]: "FLAKY" is not a
 * gRPC status name`. The packages validate with valibot; its issues are described here
 * structurally so that core depends on no validation library.
 */

/** One step of an issue's key path (valibot's `PathItem`). */
export interface ConfigIssuePathItem {
  readonly key: unknown;
}

/** A validation issue as valibot reports it (`BaseIssue`), the fields read here. */
export interface ConfigIssue {
  readonly kind: string;
  readonly type: string;
  readonly message: string;
  readonly expected: string | null;
  readonly received: string;
  readonly path?: readonly ConfigIssuePathItem[] | undefined;
  /** A union's: the issues of each of its branches. */
  readonly issues?: readonly ConfigIssue[] | undefined;
}

/** An issue to report, and the key it is about. */
export interface LocatedConfigIssue {
  /** From the top of the validated value: `['routes', 0, 'retry']`. */
  key: PropertyKey[];
  issue: ConfigIssue;
}

/**
 * The issues to report, each with its key below `prefix`. A union says only that no branch
 * matched; when the input had the shape of a branch (its issues lie below the union's value),
 * those issues say what is wrong.
 */
export function locateConfigIssues(
  issues: readonly ConfigIssue[],
  prefix: readonly PropertyKey[] = [],
): LocatedConfigIssue[] {
  return issues.flatMap((issue) => {
    const key = [...prefix, ...(issue.path ?? []).map((item) => item.key as PropertyKey)];
    // A union's branch issues have paths relative to the union's value.
    const deeper = issue.issues?.filter((inner) => (inner.path?.length ?? 0) > 0) ?? [];
    return deeper.length > 0 ? locateConfigIssues(deeper, key) : [{ key, issue }];
  });
}

/** A misspelt key (valibot's strict objects report the first one): the usual cause of an error. */
export function isUnknownKey(issue: ConfigIssue): boolean {
  return issue.type === 'strict_object' && issue.expected === 'never';
}

/**
 * The message of an issue whose schema gave none: `is required`, `unknown key`, or
 * `expected <what>, received <what>` (`expected "A" | "SRV", received "MX"`). Pass it as valibot's
 * `message` config so that every package's errors read alike.
 */
export function configIssueMessage(issue: ConfigIssue): string {
  if (isUnknownKey(issue)) return 'unknown key';
  if (issue.kind === 'schema' && issue.received === 'undefined') return 'is required';
  return `expected ${issue.expected ?? 'something else'}, received ${issue.received}`;
}

/** `['rules', 0, 'identities', 1]` → `rules[0].identities[1]`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}

/** `rules[0].identities[1]` → `['rules', 0, 'identities', 1]`; the inverse of {@link formatKeyPath}. */
export function parseKeyPath(key: string): (string | number)[] {
  return key === ''
    ? []
    : key
        .split(/\.|(?=\[)/)
        .map((part) => (part.startsWith('[') ? Number(part.slice(1, -1)) : part));
}
