import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as OTLP/HTTP JSON carries it, with the service that sent it. */
export interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER' | 'UNSPECIFIED';
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
      }[];
    }[];
  }[];
}

const KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

/**
 * Where the demo's processes send their spans: a minimal OTLP/HTTP receiver for the JSON
 * encoding (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), so the demo can show a trace without a
 * Jaeger. Point `OTEL_EXPORTER_OTLP_ENDPOINT` at a real collector to see them there instead.
 */
export async function startTraceCollector() {
  const spans: CollectedSpan[] = [];
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      response.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJson;
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service =
          resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value
            .stringValue ?? 'unknown';
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: KINDS[span.kind ?? 0] ?? 'UNSPECIFIED',
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A trace's spans from its root down, each after its parent: `service KIND` per line. */
export function traceTree(spans: readonly CollectedSpan[]): string[] {
  const lines: string[] = [];
  const ids = new Set(spans.map((span) => span.spanId));
  const visit = (span: CollectedSpan, depth: number) => {
    lines.push(`${'  '.repeat(depth)}${span.service} ${span.kind} ${span.name}`);
    for (const child of spans.filter((s) => s.parentSpanId === span.spanId)) {
      visit(child, depth + 1);
    }
  };
  for (const root of spans.filter((s) => !ids.has(s.parentSpanId))) visit(root, 0);
  return lines;
}
