import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileAuthorizationPolicy,
  compileGlob,
  loadAuthorizationPolicy,
  PolicyConfigError,
  parseAuthorizationPolicy,
} from '../src/index.js';

describe('compileGlob', () => {
  it('matches one segment with *, any depth with **, and everything else literally', () => {
    const namespaceAny = compileGlob('spiffe://test.local/ns/*/sa/frontend');
    expect(namespaceAny('spiffe://test.local/ns/shop/sa/frontend')).toBe(true);
    expect(namespaceAny('spiffe://test.local/ns//sa/frontend')).toBe(true);
    expect(namespaceAny('spiffe://test.local/ns/a/b/sa/frontend')).toBe(false);
    expect(namespaceAny('spiffe://test.local/ns/shop/sa/frontend2')).toBe(false);
    const domain = compileGlob('spiffe://test.local/**');
    expect(domain('spiffe://test.local/ns/a/sa/b')).toBe(true);
    expect(domain('spiffe://test.localhost/ns/a')).toBe(false);
    // Regex characters are literal: '.' is a dot, not any character.
    expect(compileGlob('a.b/*')('axb/c')).toBe(false);
    expect(compileGlob('(x)+[y]?/*')('(x)+[y]?/z')).toBe(true);
    expect(compileGlob('*.example.test')('api.example.test')).toBe(true);
  });
});

describe('policy semantics', () => {
  const policy = compileAuthorizationPolicy({
    rules: [
      { name: 'reads', methods: ['shop.v1.Cart/Get*'], identities: ['spiffe://td/ns/*/sa/web'] },
      { methods: ['/shop.v1.Admin/*'], identities: ['spiffe://td/ns/ops/**'] },
      { methods: ['**'], identities: ['root.test'] },
    ],
  });

  it('allows an identity matching a rule for a matching method, naming the rule', () => {
    expect(policy.allowingRule('spiffe://td/ns/a/sa/web', '/shop.v1.Cart/GetCart')).toBe('reads');
    expect(policy.allowingRule('spiffe://td/ns/ops/sa/x', '/shop.v1.Admin/Drop')).toBe('rules[1]');
    expect(policy.allowingRule('root.test', '/any.Service/Method')).toBe('rules[2]');
  });

  it('denies everything else', () => {
    expect(policy.allowingRule('spiffe://td/ns/a/sa/web', '/shop.v1.Cart/PutCart')).toBeUndefined();
    expect(policy.allowingRule('spiffe://td/ns/a/sa/web', '/shop.v1.Admin/Drop')).toBeUndefined();
    expect(policy.allowingRule('spiffe://other/ns/a/sa/web', '/shop.v1.Cart/Get')).toBeUndefined();
    expect(compileAuthorizationPolicy({ rules: [] }).allowingRule('root.test', '/a.B/C')).toBe(
      undefined,
    );
  });
});

describe('policy files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-policy-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function load(name: string, text: string) {
    const file = join(dir, name);
    await writeFile(file, text);
    return loadAuthorizationPolicy(file);
  }

  async function loadError(name: string, text: string): Promise<PolicyConfigError> {
    const error = await load(name, text).then(
      () => new Error('loaded'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PolicyConfigError);
    return error as PolicyConfigError;
  }

  it('reads JSON and YAML to the same policy', async () => {
    const rules = [{ methods: ['a.B/*'], identities: ['spiffe://td/x'] }];
    const json = await load('p.json', JSON.stringify({ rules }));
    const yaml = await load(
      'p.yaml',
      'rules:\n  - methods: [a.B/*]\n    identities: [spiffe://td/x]\n',
    );
    for (const policy of [json, yaml]) {
      expect(policy.allowingRule('spiffe://td/x', '/a.B/C')).toBe('rules[0]');
      expect(policy.allowingRule('spiffe://td/y', '/a.B/C')).toBeUndefined();
    }
  });

  it.each([
    [
      'p1.yaml',
      'rules:\n  - methods: [a.B/C]\n    identity: [x]\n',
      'rules[0].identity',
      'unknown key',
    ],
    [
      'p2.yaml',
      'rules:\n  - methods: [a.B/C]\n    identities: [x, 3]\n',
      'rules[0].identities[1]',
      'expected string, received 3',
    ],
    [
      'p3.yaml',
      'rules:\n  - methods: []\n    identities: [x]\n',
      'rules[0].methods',
      'needs at least one method',
    ],
    [
      'p4.yaml',
      "rules:\n  - methods: ['']\n    identities: [x]\n",
      'rules[0].methods[0]',
      'must not be empty',
    ],
    ['p5.json', '{"rule": []}', 'rule', 'unknown key'],
    ['p7.yaml', 'rules:\n  - methods: [a.B/C]\n', 'rules[0].identities', 'is required'],
    ['p6.json', '{"rules": {}}', 'rules', 'expected Array, received Object'],
  ])('names the key and file of a bad policy (%s)', async (name, text, key, message) => {
    const error = await loadError(name, text);
    expect([error.file, error.key]).toEqual([join(dir, name), key]);
    expect(error.message).toBe(`${join(dir, name)}: ${key}: ${message}`);
  });

  it('names the file and position of a syntax error', async () => {
    const yaml = await loadError('bad.yaml', 'rules:\n  - methods: [a.B/C\n');
    expect(yaml.message).toMatch(/bad\.yaml: invalid YAML at line \d+, column \d+/);
    const json = await loadError('bad.json', '{"rules": [');
    expect(json.message).toMatch(/bad\.json: invalid JSON: /);
    const empty = await loadError('empty.yaml', '# nothing yet\n');
    expect(empty.message).toBe(`${join(dir, 'empty.yaml')}: is empty; expected rules`);
  });

  it('names a file it cannot read', async () => {
    const file = join(dir, 'absent.yaml');
    await expect(loadAuthorizationPolicy(file)).rejects.toThrow(`${file}: cannot read (ENOENT)`);
  });

  it('parses inline text too', () => {
    expect(() => parseAuthorizationPolicy('rules: [{methods: [x], identities: [y]}]')).toThrow(
      "authorization policy: rules[0].methods[0]: expected 'package.Service/Method' (globs allowed) or '**'",
    );
  });
});
