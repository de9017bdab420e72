import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

// An OTLP/HTTP trace receiver: accepts what an OpenTelemetry exporter POSTs to /v1/traces and
// decodes the protobuf body, as a collector would.

const root = protobuf.loadSync(
  fileURLToPath(new URL('../proto-otlp/trace.proto', import.meta.url)),
);
const ExportTraceServiceRequest = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
);

export type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER' | 'UNSPECIFIED';
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  status: { code: 'UNSET' | 'OK' | 'ERROR'; message: string };
  scope: string;
  resource: Record<string, AttributeValue>;
  startNanos: bigint;
  endNanos: bigint;
}

/** One histogram of one metrics export (OTLP/HTTP JSON), flattened. */
export interface ReceivedHistogram {
  name: string;
  scope: string;
  temporality: 'DELTA' | 'CUMULATIVE';
  points: { attributes: Record<string, AttributeValue>; count: number; sum: number }[];
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`; exporters post to `${endpoint}/v1/traces` and `/v1/metrics`. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Histograms of the metrics exports sent as JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`). */
  histograms: ReceivedHistogram[];
  /** Every request seen, for asserting on how it was sent. */
  requests: { path: string; contentType: string | undefined }[];
  close(): Promise<void>;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
}

function anyValue(value: AnyValue | undefined): AttributeValue {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, anyValue(value)]));
}

/** protobufjs's plain-object form of the request (camelCase fields, longs and bytes as strings). */
interface DecodedRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId?: string;
        spanId?: string;
        parentSpanId?: string;
        traceState?: string;
        name: string;
        kind?: string;
        startTimeUnixNano?: string;
        endTimeUnixNano?: string;
        attributes?: KeyValue[];
        events?: { name: string; attributes?: KeyValue[] }[];
        status?: { code?: string; message?: string };
      }[];
    }[];
  }[];
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Decodes an ExportTraceServiceRequest protobuf body into flat spans. */
export function decodeTraceExport(bytes: Uint8Array): ReceivedSpan[] {
  const message = ExportTraceServiceRequest.decode(bytes);
  const request = ExportTraceServiceRequest.toObject(message, {
    longs: String,
    enums: String,
    bytes: String,
  }) as DecodedRequest;
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        const hex = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('hex');
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          traceState: span.traceState ?? '',
          name: span.name,
          kind: String(span.kind ?? 'SPAN_KIND_UNSPECIFIED').replace(
            'SPAN_KIND_',
            '',
          ) as ReceivedSpan['kind'],
          attributes: attributesOf(span.attributes),
          events: (span.events ?? []).map((event) => ({
            name: event.name,
            attributes: attributesOf(event.attributes),
          })),
          status: {
            code: String(span.status?.code ?? 'STATUS_CODE_UNSET').replace(
              'STATUS_CODE_',
              '',
            ) as ReceivedSpan['status']['code'],
            message: span.status?.message ?? '',
          },
          scope: scopeSpans.scope?.name ?? '',
          resource,
          startNanos: BigInt(span.startTimeUnixNano ?? 0),
          endNanos: BigInt(span.endTimeUnixNano ?? 0),
        });
      }
    }
  }
  return spans;
}

interface JsonMetricsRequest {
  resourceMetrics?: {
    scopeMetrics?: {
      scope?: { name?: string };
      metrics?: {
        name: string;
        histogram?: {
          aggregationTemporality?: number;
          dataPoints?: { attributes?: KeyValue[]; count?: string | number; sum?: number }[];
        };
      }[];
    }[];
  }[];
}

/** The histograms of an ExportMetricsServiceRequest in OTLP's JSON encoding. */
export function decodeJsonHistograms(text: string): ReceivedHistogram[] {
  const request = JSON.parse(text) as JsonMetricsRequest;
  const histograms: ReceivedHistogram[] = [];
  for (const resource of request.resourceMetrics ?? []) {
    for (const scope of resource.scopeMetrics ?? []) {
      for (const metric of scope.metrics ?? []) {
        if (metric.histogram === undefined) continue;
        histograms.push({
          name: metric.name,
          scope: scope.scope?.name ?? '',
          // AggregationTemporality in OTLP's metrics.proto: 1 delta, 2 cumulative.
          temporality: metric.histogram.aggregationTemporality === 1 ? 'DELTA' : 'CUMULATIVE',
          points: (metric.histogram.dataPoints ?? []).map((point) => ({
            attributes: attributesOf(point.attributes),
            count: Number(point.count ?? 0),
            sum: point.sum ?? 0,
          })),
        });
      }
    }
  }
  return histograms;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const histograms: ReceivedHistogram[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server: Server = createServer(async (request, response) => {
    const contentType = request.headers['content-type'];
    requests.push({ path: request.url ?? '', contentType });
    const bytes = await body(request);
    if (
      request.method === 'POST' &&
      request.url === '/v1/metrics' &&
      contentType === 'application/json'
    ) {
      try {
        histograms.push(...decodeJsonHistograms(bytes.toString('utf8')));
      } catch (error) {
        response.writeHead(400).end(String(error));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      response.writeHead(404).end();
      return;
    }
    if (contentType !== 'application/x-protobuf') {
      response.writeHead(415).end();
      return;
    }
    try {
      spans.push(...decodeTraceExport(bytes));
    } catch (error) {
      response.writeHead(400).end(String(error));
      return;
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    histograms,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
