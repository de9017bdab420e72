import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Docker can't run here, so the compose file and the Prometheus config are checked statically:
// both parse, and every name, port and path one of them relies on exists in the other.

const here = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

interface ComposeService {
  image?: string;
  command?: string[];
  working_dir?: string;
  volumes?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: string[];
  profiles?: string[];
}

const compose = parse(readFileSync(here('docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const prometheus = parse(readFileSync(here('prometheus.yml'), 'utf8')) as {
  global: { scrape_interval: string; evaluation_interval: string };
  scrape_configs: {
    job_name: string;
    metrics_path?: string;
    static_configs: { targets: string[] }[];
  }[];
};
const services = compose.services;
const apps = Object.entries(services).filter(([, s]) => s.command?.[0] === 'node');

function hostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/** The port an app serves (gRPC or metrics), as its environment tells app.ts and telemetry. */
function grpcPort(service: ComposeService): number {
  return hostPort(service.environment?.GRPC_ADDRESS ?? '127.0.0.1:50051')[1];
}
function metricsPort(service: ComposeService): number {
  return Number(service.environment?.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464);
}

describe('docker-compose.yml', () => {
  it('runs Jaeger all-in-one with OTLP on 4317 and 4318 and its UI on 16686', () => {
    const jaeger = services.jaeger;
    expect(jaeger?.image).toMatch(/^jaegertracing\/all-in-one:\d+\.\d+\.\d+$/);
    expect(jaeger?.environment?.COLLECTOR_OTLP_ENABLED).toBe('true');
    expect(jaeger?.ports).toEqual([
      '127.0.0.1:16686:16686',
      '127.0.0.1:4317:4317',
      '127.0.0.1:4318:4318',
    ]);
  });

  it("publishes every port on the host's loopback only", () => {
    const published = Object.values(services).flatMap((service) => service.ports ?? []);
    expect(published.length).toBeGreaterThanOrEqual(6);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('runs Prometheus on the config file next to it', () => {
    const server = services.prometheus;
    expect(server?.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    const configFlag = server?.command?.find((arg) => arg.startsWith('--config.file='));
    const inContainer = configFlag?.slice('--config.file='.length);
    const mount = server?.volumes?.find((volume) => volume.split(':')[1] === inContainer);
    expect(mount?.split(':')[0]).toBe('./prometheus.yml');
    expect(server?.depends_on?.sort()).toEqual(['frontend', 'inventory', 'orders']);
  });

  it('chains frontend → orders → inventory, each sending traces to Jaeger over OTLP/HTTP', () => {
    expect(apps.map(([name]) => name).sort()).toEqual([
      'frontend',
      'inventory',
      'loadgen',
      'orders',
    ]);
    for (const [name, app] of apps) {
      expect(app.image).toMatch(/^node:24-/);
      // The repository is mounted at /repo and the command runs this example's build output.
      expect(app.volumes).toContain('../..:/repo:ro');
      expect(app.working_dir).toBe('/repo/examples/observability');
      const script = app.command?.[1] as string;
      expect(existsSync(here(script.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')))).toBe(
        true,
      );
      const endpoint = new URL(app.environment?.OTEL_EXPORTER_OTLP_ENDPOINT ?? '');
      expect(endpoint.hostname).toBe('jaeger');
      expect(services.jaeger?.ports).toContain(`127.0.0.1:${endpoint.port}:${endpoint.port}`);
      expect(app.environment?.OTEL_EXPORTER_OTLP_PROTOCOL).toBe('http/protobuf');
      if (name !== 'loadgen') {
        expect(app.environment?.SERVICE).toBe(name);
        // The apps bind loopback unless told otherwise; other containers must reach them.
        expect(hostPort(app.environment?.GRPC_ADDRESS ?? '')[0]).toBe('0.0.0.0');
        expect(app.environment?.OTEL_EXPORTER_PROMETHEUS_HOST).toBe('0.0.0.0');
      }
    }
    const next = (name: string) => services[name]?.environment?.NEXT;
    expect([next('frontend'), next('orders'), next('inventory')]).toEqual([
      `orders:${grpcPort(services.orders as ComposeService)}`,
      `inventory:${grpcPort(services.inventory as ComposeService)}`,
      undefined,
    ]);
    const [frontendHost, frontendPort] = hostPort(services.loadgen?.environment?.FRONTEND ?? '');
    expect(frontendHost).toBe('frontend');
    expect(frontendPort).toBe(grpcPort(services.frontend as ComposeService));
    expect(services.loadgen?.profiles).toEqual(['load']);
  });
});

describe('prometheus.yml', () => {
  it('scrapes exactly the apps that serve metrics, on the port and path they serve them', () => {
    const duration = /^(\d+(ms|s|m|h|d|w|y))+$/;
    expect(prometheus.global.scrape_interval).toMatch(duration);
    expect(prometheus.global.evaluation_interval).toMatch(duration);
    const jobs = prometheus.scrape_configs.map((job) => job.job_name);
    expect(new Set(jobs).size).toBe(jobs.length);
    const targets = prometheus.scrape_configs.flatMap((job) => {
      // app.ts serves the scrape endpoint on /metrics (the telemetry package's default).
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
      return job.static_configs.flatMap((config) => config.targets);
    });
    const served = apps
      .filter(([name]) => !services[name]?.profiles)
      .map(([name, app]) => `${name}:${metricsPort(app)}`);
    expect(targets.sort()).toEqual(served.sort());
  });

  it('passes promtool check config, when promtool is installed', (context) => {
    const promtool = spawnSync('promtool', ['--version']);
    if (promtool.error !== undefined) {
      console.warn(
        'promtool not found: skipping the Prometheus config check (Debian package "prometheus")',
      );
      context.skip();
    }
    const output = execFileSync('promtool', ['check', 'config', here('prometheus.yml')], {
      encoding: 'utf8',
    });
    expect(output).toContain('SUCCESS');
  });
});
