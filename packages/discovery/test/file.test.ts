import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Discovery, type DiscoveryError, fileDiscovery } from '../src/index.js';
import { eventually, logUpdates } from './support/updates.js';

const intervalMs = 300;
let dir: string;
const errors: DiscoveryError[] = [];
const discoveries: Discovery[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-file-discovery-'));
  errors.length = 0;
});
afterEach(async () => {
  for (const discovery of discoveries.splice(0)) await discovery.close();
  await rm(dir, { recursive: true, force: true });
});

function start(path: string, options: Partial<Parameters<typeof fileDiscovery>[0]> = {}) {
  const discovery = fileDiscovery({ path, intervalMs, onError: (e) => errors.push(e), ...options });
  discoveries.push(discovery);
  return discovery;
}

/** Writes to a temporary name and renames over `path`, as editors, Ansible and ConfigMaps do. */
async function writeAtomically(path: string, content: string) {
  const temporary = `${path}.tmp-${Math.random()}`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

describe('fileDiscovery', () => {
  it('reads a YAML file with labels and follows an atomic rename within one interval', async () => {
    const path = join(dir, 'endpoints.yaml');
    await writeFile(
      path,
      'endpoints:\n  - 127.0.0.1:50051\n  - address: "[::1]:50052"\n    labels: { zone: b }\n',
    );
    const log = logUpdates(start(path));
    await log.waitFor(['127.0.0.1:50051', '[::1]:50052']);
    expect(log.updates[0]!.update.endpoints[1]).toEqual({
      address: '[::1]:50052',
      host: '::1',
      port: 50052,
      labels: { zone: 'b' },
    });

    const changedAt = performance.now();
    await writeAtomically(path, 'endpoints: [127.0.0.1:50051, 127.0.0.1:50053]\n');
    const { at } = await log.waitFor(['127.0.0.1:50051', '127.0.0.1:50053']);
    expect(at - changedAt).toBeLessThan(intervalMs);
    // And again: a watch on the replaced inode would have gone deaf after the first rename.
    await writeAtomically(path, 'endpoints: [127.0.0.1:50054]\n');
    await log.waitFor(['127.0.0.1:50054']);
    expect(errors).toEqual([]);
  });

  it('follows in-place rewrites of a JSON file, never publishing the truncated moment', async () => {
    const path = join(dir, 'endpoints.json');
    await writeFile(path, JSON.stringify({ endpoints: ['127.0.0.1:1'] }));
    const log = logUpdates(start(path));
    await log.waitFor(['127.0.0.1:1']);
    for (let port = 2; port <= 6; port++) {
      const changedAt = performance.now();
      await writeFile(path, JSON.stringify({ endpoints: [`127.0.0.1:${port}`] }));
      const { at } = await log.waitFor([`127.0.0.1:${port}`]);
      expect(at - changedAt).toBeLessThan(intervalMs);
    }
    expect(log.updates.map((u) => u.addresses)).toEqual(
      [1, 2, 3, 4, 5, 6].map((port) => [`127.0.0.1:${port}`]),
    );
  });

  it('polls when no change notification comes (fs.watch unreliable on NFS and some mounts)', async () => {
    const path = join(dir, 'endpoints.yaml');
    await writeFile(path, 'endpoints: [127.0.0.1:1]\n');
    // A notification that fires never: every read below comes from the poll.
    const log = logUpdates(start(path, { settleMs: 60_000 }));
    await log.waitFor(['127.0.0.1:1']);
    const changedAt = performance.now();
    await writeFile(path, 'endpoints: [127.0.0.1:2]\n');
    const { at } = await log.waitFor(['127.0.0.1:2']);
    expect(at - changedAt).toBeLessThan(intervalMs + 250);
  });

  it('an invalid file keeps the last good set and the error names the file and the key', async () => {
    const path = join(dir, 'endpoints.yaml');
    await writeFile(path, 'endpoints: [127.0.0.1:1]\n');
    const log = logUpdates(start(path));
    await log.waitFor(['127.0.0.1:1']);

    await writeAtomically(
      path,
      'endpoints:\n  - 127.0.0.1:2\n  - address: 10.0.0.1\n  - { address: "[::1]:3", labels: { zone: 7 } }\n',
    );
    await eventually(() => errors.length === 1, 2_000, 'an error');
    expect(errors[0]!.message).toBe(
      `endpoints file ${path}: endpoints[1].address: "10.0.0.1" is not host:port (write an IPv6 address as [::1]:50051); endpoints[2].labels.zone: expected string, received 7; keeping the last good set`,
    );

    await writeAtomically(path, 'endpoints: [127.0.0.1:2\n');
    await eventually(() => errors.length === 2, 2_000, 'a second error');
    expect(errors[1]!.message).toMatch(
      new RegExp(
        `^endpoints file ${path} is not valid JSON or YAML: .*; keeping the last good set$`,
      ),
    );

    await writeAtomically(path, 'endpoint: [127.0.0.1:2]\n');
    await eventually(() => errors.length === 3, 2_000, 'a third error');
    expect(errors[2]!.message).toMatch(/endpoints: is required; endpoint: unknown key/);

    await writeAtomically(path, '');
    await eventually(() => errors.length === 4, 2_000, 'a fourth error');
    expect(errors[3]!.message).toBe(`endpoints file ${path} is empty; keeping the last good set`);

    // An unchanged bad file is not re-reported on every poll.
    await new Promise((r) => setTimeout(r, intervalMs * 2));
    expect(errors).toHaveLength(4);
    expect(log.updates).toHaveLength(1);

    await writeAtomically(path, 'endpoints: [127.0.0.1:2]\n');
    await log.waitFor(['127.0.0.1:2']);
  });

  it('a missing file keeps the last good set, is reported once, and is read again when back', async () => {
    const path = join(dir, 'endpoints.yaml');
    const log = logUpdates(start(path));
    await eventually(() => errors.length === 1, 2_000, 'an error');
    expect(errors[0]!.message).toMatch(
      new RegExp(`^cannot read endpoints file ${path}: ENOENT.*; keeping the last good set$`),
    );
    expect(log.updates).toEqual([]);

    await writeFile(path, 'endpoints: [127.0.0.1:1]\n');
    await log.waitFor(['127.0.0.1:1']);
    await unlink(path);
    await new Promise((r) => setTimeout(r, intervalMs * 3));
    expect(errors).toHaveLength(2);
    expect(log.latest()).toEqual(['127.0.0.1:1']);

    await writeFile(path, 'endpoints: [127.0.0.1:1]\n');
    await writeFile(path, 'endpoints: []\n');
    await log.waitFor([]);
  });

  it('refresh re-reads at once; close stops reading', async () => {
    const path = join(dir, 'endpoints.yaml');
    await writeFile(path, 'endpoints: [127.0.0.1:1]\n');
    const discovery = start(path, {
      intervalMs: 60_000,
      settleMs: 60_000,
      minRefreshIntervalMs: 0,
    });
    const log = logUpdates(discovery);
    await log.waitFor(['127.0.0.1:1']);
    await writeFile(path, 'endpoints: [127.0.0.1:2]\n');
    discovery.refresh('connect ECONNREFUSED 127.0.0.1:1');
    await log.waitFor(['127.0.0.1:2'], 1_000);

    await discovery.close();
    await writeFile(path, 'endpoints: [127.0.0.1:3]\n');
    discovery.refresh('after close');
    await new Promise((r) => setTimeout(r, 100));
    expect(log.updates).toHaveLength(2);
  });
});
