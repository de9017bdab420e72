import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import {
  compileGlob,
  configIssueMessage,
  formatKeyPath,
  type Glob,
  isUnknownKey,
  locateConfigIssues,
} from '@switchyard/core';
import * as v from 'valibot';

/**
 * Who may call what. Everything not allowed by a rule is denied.
 *
 * ```yaml
 * rules:
 *   - name: frontend reads carts          # optional, for logs
 *     methods: [shop.v1.Cart/Get*]        # package.Service/Method globs
 *     identities: [spiffe://prod.example/ns/shop/sa/frontend]
 * ```
 */
export interface AuthorizationPolicy {
  readonly rules: readonly AuthorizationRule[];
}

/** Allows callers whose identity matches one of `identities` to call the `methods`. */
export interface AuthorizationRule {
  /** Shown in decision logs. */
  readonly name?: string;
  /**
   * `package.Service/Method` globs (a leading `/` is optional): `*` matches within the service or
   * method name, so `shop.v1.Cart/*` is every method of one service; `**` alone is every method.
   */
  readonly methods: readonly string[];
  /**
   * Identity globs: `*` matches within one `/`-separated segment (a namespace, a service account),
   * `**` across segments (`spiffe://prod.example/**` is a whole trust domain).
   */
  readonly identities: readonly string[];
}

/** An authorization policy that is malformed, with the key and file at fault. */
export class PolicyConfigError extends Error {
  override readonly name = 'PolicyConfigError';
  constructor(
    /** The policy file, or `authorization policy` for one given in code. */
    readonly file: string,
    /** The offending key, e.g. `rules[0].identities[1]`; empty when the file as a whole is bad. */
    readonly key: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${key ? `${key}: ` : ''}${message}`, options);
  }
}

// Loaded on first use (synchronously: callers parse in line): a process that reads no YAML does
// not carry the parser, ≈7 MB resident.
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml');

const pattern = v.pipe(v.string(), v.minLength(1, 'must not be empty'));
const methodPattern = v.pipe(
  pattern,
  v.regex(/^\/?(\*\*|[^/]+\/[^/]+)$/, "expected 'package.Service/Method' (globs allowed) or '**'"),
);
const policySchema = v.strictObject({
  rules: v.array(
    v.strictObject({
      name: v.optional(v.string()),
      methods: v.pipe(v.array(methodPattern), v.minLength(1, 'needs at least one method')),
      identities: v.pipe(v.array(pattern), v.minLength(1, 'needs at least one identity')),
    }),
  ),
});

/**
 * Validates `policy` (written in code or read from a file) and compiles its globs. Throws a
 * {@link PolicyConfigError} naming the first bad key.
 */
export function compileAuthorizationPolicy(
  policy: AuthorizationPolicy,
  file = 'authorization policy',
): CompiledPolicy {
  if (policy == null) throw new PolicyConfigError(file, '', 'is empty; expected rules');
  const result = v.safeParse(policySchema, policy, { message: configIssueMessage });
  if (!result.success) {
    // A misspelt key also leaves a required one missing; the misspelling is the news.
    const issues = locateConfigIssues(result.issues);
    const { key, issue } = issues.find(({ issue }) => isUnknownKey(issue)) ?? issues[0]!;
    throw new PolicyConfigError(file, formatKeyPath(key), issue.message);
  }
  return new CompiledPolicy(result.output.rules);
}

/** Parses a policy written as YAML (JSON is YAML too) and compiles it. */
export function parseAuthorizationPolicy(
  text: string,
  file = 'authorization policy',
): CompiledPolicy {
  const document = yaml().parseDocument(text, { prettyErrors: true });
  const [error] = document.errors;
  if (error) {
    const [position] = error.linePos ?? [];
    const at = position ? ` at line ${position.line}, column ${position.col}` : '';
    throw new PolicyConfigError(file, '', `invalid YAML${at}: ${error.code}`, { cause: error });
  }
  return compileAuthorizationPolicy(document.toJS() as AuthorizationPolicy, file);
}

/** Reads a YAML or JSON policy file and compiles it. */
export async function loadAuthorizationPolicy(file: string): Promise<CompiledPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new PolicyConfigError(file, '', `cannot read (${reason})`, { cause: error });
  }
  if (extname(file) === '.json') {
    try {
      return compileAuthorizationPolicy(JSON.parse(text) as AuthorizationPolicy, file);
    } catch (error) {
      if (error instanceof PolicyConfigError) throw error;
      throw new PolicyConfigError(file, '', `invalid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return parseAuthorizationPolicy(text, file);
}

interface CompiledRule {
  readonly name: string;
  readonly methods: readonly Glob[];
  readonly identities: readonly Glob[];
}

/** A validated policy, ready to answer whether an identity may call a method. */
export class CompiledPolicy {
  readonly #rules: readonly CompiledRule[];

  /** @internal use {@link compileAuthorizationPolicy} */
  constructor(rules: readonly AuthorizationRule[]) {
    this.#rules = rules.map((rule, index) => ({
      name: rule.name ?? `rules[${index}]`,
      methods: rule.methods.map((method) => compileGlob(method.replace(/^\//, ''))),
      identities: rule.identities.map(compileGlob),
    }));
  }

  /**
   * The name of the first rule that allows `identity` to call `method` (a gRPC path,
   * `/package.Service/Method`), or `undefined`: denied.
   */
  allowingRule(identity: string, method: string): string | undefined {
    const path = method.replace(/^\//, '');
    const rule = this.#rules.find(
      (candidate) =>
        candidate.methods.some((matches) => matches(path)) &&
        candidate.identities.some((matches) => matches(identity)),
    );
    return rule?.name;
  }
}
