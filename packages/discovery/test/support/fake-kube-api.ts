import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, issueCertificate } from '@switchyard/certs';

/** The parts of a discovery.k8s.io/v1 EndpointSlice the fake stores (as JSON, like the API). */
export interface Slice {
  metadata: {
    name: string;
    namespace?: string;
    labels: Record<string, string>;
    resourceVersion?: string;
  };
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints:
    | {
        addresses: string[];
        conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
        nodeName?: string;
        zone?: string;
        targetRef?: { kind: string; name: string; namespace?: string };
      }[]
    | null;
  ports: { name?: string; port: number; protocol?: string }[] | null;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface Watcher {
  response: ServerResponse;
  namespace: string;
  selector: Record<string, string>;
  bookmarks: boolean;
}

const token = 'discovery-test-token';
const path = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;

/**
 * A Kubernetes API server, as far as EndpointSlices go, over real TLS with bearer-token auth:
 * list (with the collection's resourceVersion), and `?watch=true` streaming JSON lines from a
 * resourceVersion (ADDED/MODIFIED/DELETED, BOOKMARK when asked, ERROR 410 "Expired" for a
 * compacted version, `timeoutSeconds`), with equality label selectors — the API's real shapes.
 */
export async function startFakeKubeApi() {
  const ca = await createCertificateAuthority({ commonName: 'fake kube-apiserver CA' });
  const serving = await issueCertificate(ca, { ipAddresses: ['127.0.0.1'], usage: 'server' });
  let resourceVersion = 1000;
  const slices = new Map<string, Slice>();
  const history: { rv: number; type: EventType; object: Slice }[] = [];
  let oldestKept = 0;
  const watchers = new Set<Watcher>();
  const requests: { watch: boolean; query: URLSearchParams }[] = [];
  const failures: number[] = [];
  let honourTimeouts = true;

  const server = createServer(
    { cert: serving.chainPem, key: serving.keyPem },
    (request, response) => {
      const url = new URL(request.url ?? '/', 'https://127.0.0.1');
      const namespace = path.exec(url.pathname)?.[1];
      const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
      requests.push({ watch, query: url.searchParams });
      if (request.headers.authorization !== `Bearer ${token}`) {
        return status(response, 401, 'Unauthorized', 'Unauthorized');
      }
      if (!namespace || request.method !== 'GET')
        return status(response, 404, 'NotFound', 'not found');
      const failWith = failures.shift();
      if (failWith !== undefined)
        return status(response, failWith, 'InternalError', `injected ${failWith}`);
      const selector = parseSelector(url.searchParams.get('labelSelector'));
      const matches = (slice: Slice) =>
        slice.metadata.namespace === namespace &&
        Object.entries(selector).every(([k, v]) => slice.metadata.labels[k] === v);

      if (!watch) {
        return json(response, 200, {
          kind: 'EndpointSliceList',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: { resourceVersion: String(resourceVersion) },
          items: [...slices.values()].filter(matches),
        });
      }
      // The API server sends a watch's headers at once, before any event.
      response.writeHead(200, { 'content-type': 'application/json' });
      response.flushHeaders();
      const from = Number(url.searchParams.get('resourceVersion') ?? resourceVersion);
      if (from < oldestKept) {
        // What the API server sends for a version compacted away: 200, one ERROR event, the end.
        send(response, 'ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: `too old resource version: ${from} (${oldestKept})`,
          reason: 'Expired',
          code: 410,
        });
        return response.end();
      }
      for (const event of history) {
        if (event.rv > from && matches(event.object)) send(response, event.type, event.object);
      }
      const watcher: Watcher = {
        response,
        namespace,
        selector,
        bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
      };
      watchers.add(watcher);
      const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? 0);
      const timer =
        timeoutSeconds > 0 && honourTimeouts
          ? setTimeout(() => response.end(), timeoutSeconds * 1000)
          : undefined;
      response.on('close', () => {
        clearTimeout(timer);
        watchers.delete(watcher);
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const record = (type: EventType, object: Slice) => {
    resourceVersion += 1;
    object.metadata.resourceVersion = String(resourceVersion);
    history.push({ rv: resourceVersion, type, object: structuredClone(object) });
    for (const w of watchers) {
      const { namespace: ns, labels } = object.metadata;
      if (ns === w.namespace && Object.entries(w.selector).every(([k, v]) => labels[k] === v)) {
        send(w.response, type, object);
      }
    }
  };

  return {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    /** A kubeconfig, as `kubectl config view --raw` would print it, for this server. */
    kubeconfig: (namespace = 'default') =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        `    certificate-authority-data: ${Buffer.from(ca.certPem).toString('base64')}`,
        'users:',
        '- name: discovery',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: discovery',
        `    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    /** Creates or replaces a slice (ADDED or MODIFIED). */
    apply(slice: Slice) {
      const stored = structuredClone(slice);
      stored.metadata.namespace ??= 'default';
      const existed = slices.has(key(stored));
      slices.set(key(stored), stored);
      record(existed ? 'MODIFIED' : 'ADDED', stored);
    },
    delete(name: string, namespace = 'default') {
      const slice = slices.get(`${namespace}/${name}`);
      if (!slice) throw new Error(`no slice ${namespace}/${name}`);
      slices.delete(key(slice));
      record('DELETED', slice);
    },
    /** Sends a BOOKMARK at the current resourceVersion to watches that allow them. */
    bookmark() {
      for (const w of watchers) {
        if (!w.bookmarks) continue;
        send(w.response, 'BOOKMARK', {
          kind: 'EndpointSlice',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: { resourceVersion: String(resourceVersion) },
        });
      }
    },
    /** Drops the event history, as etcd compaction does: older versions now get 410. */
    compact() {
      oldestKept = resourceVersion;
      history.length = 0;
    },
    /** Cuts every open watch connection mid-stream (a network drop or an API server restart). */
    dropWatches() {
      for (const w of watchers) w.response.socket?.destroy();
    },
    /** Watches stay open past their timeoutSeconds, as on a connection that died silently. */
    ignoreWatchTimeouts() {
      honourTimeouts = false;
    },
    /** The next requests fail with these HTTP statuses, in order. */
    failNext(...statuses: number[]) {
      failures.push(...statuses);
    },
    openWatches: () => watchers.size,
    close: async () => {
      for (const w of watchers) w.response.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const key = (slice: Slice) => `${slice.metadata.namespace}/${slice.metadata.name}`;

function parseSelector(selector: string | null): Record<string, string> {
  const pairs = (selector ?? '').split(',').filter(Boolean);
  return Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]));
}

function send(response: ServerResponse, type: string, object: unknown) {
  response.write(`${JSON.stringify({ type, object })}\n`);
}

function json(response: ServerResponse, code: number, body: unknown) {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function status(response: ServerResponse, code: number, reason: string, message: string) {
  json(response, code, {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message,
    reason,
    code,
  });
}

export type FakeKubeApi = Awaited<ReturnType<typeof startFakeKubeApi>>;
