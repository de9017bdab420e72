import { PROXY_KIT_NODE_FLAGS } from '@switchyard/proxy-kit/node-flags';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findManifest, loadManifests, type Manifest, problems } from './manifests.js';

// The manifests against the Kubernetes API's schemas (kubernetes-models) and field lists
// (@kubernetes/client-node), then against each other: every name, label, port and path one of
// them relies on exists in another.

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  restartPolicy?: string;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Probe {
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string } }[];
}
interface DeploymentSpec {
  selector: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
}
interface ServiceSpec {
  clusterIP?: string;
  selector: Record<string, string>;
  ports: { name: string; port: number; targetPort: string | number; appProtocol?: string }[];
}

const all = loadManifests();
const find = findManifest;
const deployment = (name: string) => find('Deployment', name).spec as DeploymentSpec;
const service = (name: string) => find('Service', name).spec as ServiceSpec;
const proxyConfig = parse(
  (find('ConfigMap', 'proxy-kit').data as Record<string, string>)['proxy.yaml'] as string,
);

describe('the manifests', () => {
  it('are what the Kubernetes API accepts: its schemas, and no field it does not know', () => {
    expect(
      all.map(({ file, manifest }) => `${file} ${manifest.kind}/${manifest.metadata.name}`),
    ).toMatchInlineSnapshot(`
        [
          "00-namespace.yaml Namespace/switchyard-example",
          "10-catalog.yaml Service/catalog",
          "10-catalog.yaml Deployment/catalog",
          "20-proxy-kit.yaml ServiceAccount/proxy-kit",
          "20-proxy-kit.yaml Role/endpointslice-reader",
          "20-proxy-kit.yaml RoleBinding/proxy-kit-endpointslice-reader",
          "20-proxy-kit.yaml ConfigMap/proxy-kit",
          "20-proxy-kit.yaml Deployment/proxy-kit",
          "20-proxy-kit.yaml Service/proxy-kit",
          "30-storefront.yaml ServiceAccount/storefront",
          "30-storefront.yaml Deployment/storefront",
          "30-storefront.yaml Service/storefront",
        ]
      `);
    for (const { file, manifest } of all) {
      expect(problems(manifest), `${file} ${manifest.kind}/${manifest.metadata.name}`).toEqual([]);
      if (manifest.kind !== 'Namespace') {
        expect(manifest.metadata.namespace).toBe('switchyard-example');
      }
    }
  });

  it('would be refused with a wrong type, a missing field or a misspelt one', () => {
    const broken = structuredClone(find('Deployment', 'catalog')) as Manifest & {
      spec: DeploymentSpec;
    };
    const container = broken.spec.template.spec.containers[0] as Container & { imagee?: string };
    (container.readinessProbe as { grpc: { port: unknown } }).grpc.port = 'grpc';
    container.imagee = 'typo';
    delete (broken.spec as Partial<DeploymentSpec>).selector;
    const found = problems(broken);
    expect(found.join('\n')).toContain('must have required property');
    expect(found.join('\n')).toContain('must be integer');
    expect(found).toContain(
      'apps/v1/Deployment.spec.template.spec.containers[0].imagee: unknown field',
    );
  });

  it('put the catalog behind a headless Service whose port name proxy-kit discovers by', () => {
    const catalog = service('catalog');
    expect(catalog.clusterIP).toBe('None');
    expect(deployment('catalog').template.metadata.labels).toMatchObject(catalog.selector);
    expect(deployment('catalog').selector.matchLabels).toEqual(catalog.selector);
    expect(proxyConfig.discovery).toEqual({ type: 'kubernetes', service: 'catalog', port: 'grpc' });
    const port = catalog.ports.find((p) => p.name === proxyConfig.discovery.port);
    const pod = deployment('catalog').template.spec.containers[0] as Container;
    expect(pod.ports?.find((p) => p.name === port?.targetPort)?.containerPort).toBe(50051);
    expect(pod.env?.find((e) => e.name === 'GRPC_ADDRESS')?.value).toBe('0.0.0.0:50051');
  });

  it('let proxy-kit list and watch EndpointSlices in its namespace, and nothing else', () => {
    const role = find('Role', 'endpointslice-reader');
    expect(role.rules).toEqual([
      {
        apiGroups: ['discovery.k8s.io'],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const binding = find('RoleBinding', 'proxy-kit-endpointslice-reader');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'endpointslice-reader',
    });
    const subjects = (binding.subjects as { kind: string; name: string }[]).map((s) => s.name);
    for (const name of ['proxy-kit', 'storefront']) {
      const account = deployment(name).template.spec.serviceAccountName as string;
      expect(find('ServiceAccount', account)).toBeDefined();
      expect(subjects).toContain(account);
    }
  });

  it('run proxy-kit from the ConfigMap, as a Deployment and as a native sidecar on loopback', () => {
    for (const [name, container] of [
      ['proxy-kit', deployment('proxy-kit').template.spec.containers[0]],
      ['storefront', deployment('storefront').template.spec.initContainers?.[0]],
    ] as const) {
      const spec = deployment(name).template.spec;
      const argv = [...(container?.command ?? []), ...(container?.args ?? [])];
      // The flags the proxy-kit bin runs node with (it is not the bin that runs here).
      expect(argv.slice(0, 2 + PROXY_KIT_NODE_FLAGS.length)).toEqual([
        'node',
        ...PROXY_KIT_NODE_FLAGS,
        'packages/proxy-kit/dist/cli.js',
      ]);
      const configPath = argv[argv.indexOf('--config') + 1] as string;
      const mount = container?.volumeMounts?.find((m) => configPath.startsWith(`${m.mountPath}/`));
      const volume = spec.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.configMap?.name).toBe('proxy-kit');
      expect(configPath.slice((mount?.mountPath.length ?? 0) + 1)).toBe('proxy.yaml');
    }
    // proxy-kit's grace period ends before the kubelet's SIGKILL.
    expect(Number.parseInt(proxyConfig.shutdown.grace, 10)).toBeLessThan(
      deployment('proxy-kit').template.spec.terminationGracePeriodSeconds as number,
    );
    const sidecar = deployment('storefront').template.spec.initContainers?.[0] as Container;
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.args?.slice(-2)).toEqual(['--listen', '127.0.0.1:4140']);
    expect(sidecar.startupProbe?.tcpSocket?.port).toBe(4140);
    const app = deployment('storefront').template.spec.containers[0] as Container;
    expect(app.env?.find((e) => e.name === 'NEXT')?.value).toBe('127.0.0.1:4140');
  });

  it('probe every serving container over gRPC health on a port it declares', () => {
    for (const name of ['catalog', 'proxy-kit', 'storefront']) {
      const container = deployment(name).template.spec.containers[0] as Container;
      const port = container.readinessProbe?.grpc?.port;
      expect(
        container.ports?.map((p) => p.containerPort),
        name,
      ).toContain(port);
      expect(container.livenessProbe, name).toBeDefined();
      const exposed = service(name).ports[0];
      expect(exposed?.appProtocol).toBe('kubernetes.io/h2c');
      expect(container.ports?.find((p) => p.name === exposed?.targetPort)?.containerPort).toBe(
        port,
      );
    }
  });
});
