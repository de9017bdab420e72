import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  type Discovery,
  DiscoveryError,
  type DiscoveryReportingOptions,
  EndpointPublisher,
  pacedDiscovery,
  ResolutionPacer,
  reportToConsole,
} from './discovery.js';
import { parseEndpointsDocument } from './schema.js';

/** Options of {@link fileDiscovery}. */
export interface FileDiscoveryOptions extends DiscoveryReportingOptions {
  /**
   * A JSON or YAML file: `{ "endpoints": ["10.0.0.1:50051", { "address": "…", "labels": {…} }] }`.
   * A Kubernetes ConfigMap mount works: its atomic symlink swap is seen like any rename.
   */
  path: string;
  /**
   * Polling period, the fallback for file systems where fs.watch misses changes (NFS, some
   * container mounts). Default 5,000 ms.
   */
  intervalMs?: number;
  /** `refresh` re-reads the file at most this often. Default 1,000 ms. */
  minRefreshIntervalMs?: number;
  /**
   * How long a change notification waits for more before the file is read, so that a writer's
   * truncate-then-write is read once, whole. Default 25 ms.
   */
  settleMs?: number;
}

/**
 * Endpoints from a watched JSON/YAML file. The file's directory is watched (an editor's or
 * ConfigMap's atomic rename replaces the file's inode, which a watch on the file itself would
 * lose) and the file is also polled every `intervalMs`. A missing, empty or invalid file keeps the
 * last good set and reports an error naming the file and the key.
 */
export function fileDiscovery({
  path,
  intervalMs = 5_000,
  minRefreshIntervalMs = 1_000,
  settleMs = 25,
  onError = reportToConsole,
}: FileDiscoveryOptions): Discovery {
  const file = resolve(path);
  const publisher = new EndpointPublisher(onError);
  const pacer = new ResolutionPacer(minRefreshIntervalMs);
  let settleTimer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, () => {
      clearTimeout(settleTimer);
      settleTimer = setTimeout(() => pacer.wake(), settleMs).unref();
    });
    watcher.on('error', (cause) => {
      onError(
        new DiscoveryError(`watching ${file} failed, polling only: ${cause.message}`, { cause }),
      );
      watcher?.close();
    });
  } catch (cause) {
    onError(
      new DiscoveryError(`cannot watch ${file}, polling only: ${(cause as Error).message}`, {
        cause,
      }),
    );
  }

  // What the last read gave, so that an unchanged file (valid or not) is neither re-parsed nor
  // re-reported on every poll.
  let lastContent: string | undefined;
  let lastReadError: string | undefined;
  return pacedDiscovery(publisher, pacer, {
    async resolve() {
      let content: string | undefined;
      try {
        content = await readFile(file, 'utf8');
        lastReadError = undefined;
      } catch (cause) {
        // Missing or unreadable: forget the content so the file is parsed again when it is back.
        lastContent = undefined;
        const message = `cannot read endpoints file ${file}: ${(cause as Error).message}`;
        if (message !== lastReadError) {
          onError(new DiscoveryError(`${message}; keeping the last good set`, { cause }));
        }
        lastReadError = message;
      }
      if (content !== undefined && content !== lastContent) {
        lastContent = content;
        try {
          publisher.publish(parseEndpointsDocument(await parseDocument(file, content), file));
        } catch (cause) {
          onError(
            new DiscoveryError(`${(cause as Error).message}; keeping the last good set`, { cause }),
          );
        }
      }
      return intervalMs;
    },
    release() {
      clearTimeout(settleTimer);
      watcher?.close();
    },
  });
}

async function parseDocument(file: string, content: string): Promise<unknown> {
  // A writer that truncates before writing leaves an empty file for a moment; it is never
  // "no endpoints" (that is `endpoints: []`).
  if (content.trim() === '') throw new SyntaxError(`endpoints file ${file} is empty`);
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    // Loaded on first use: a proxy that discovers no file never carries the parser (≈7 MB).
    const { parse } = await import('yaml');
    return parse(content);
  } catch (cause) {
    // The parser's first line names the problem, its line and column; the rest is a code frame.
    const problem = ((cause as Error).message.split('\n')[0] ?? '').replace(/:$/, '');
    throw new SyntaxError(`endpoints file ${file} is not valid JSON or YAML: ${problem}`, {
      cause,
    });
  }
}
