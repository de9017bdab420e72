import { describe, expect, it } from 'vitest';
import { type BalancedChannelOptions, createBalancedChannel } from '../src/index.js';

/** The error createBalancedChannel throws, or 'created' (the channel closed again). */
function attempt(
  target: Parameters<typeof createBalancedChannel>[0],
  options?: BalancedChannelOptions,
) {
  try {
    createBalancedChannel(target, { onError: () => {}, ...options }).close();
    return 'created';
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

describe('targets', () => {
  it('takes every documented form', () => {
    for (const target of [
      'dns:///orders.default.svc.cluster.local:50051',
      'dns://127.0.0.1:5353/orders.test:50051',
      'dns:orders.test:50051',
      'dns:///127.0.0.1:50051',
      'dns:///[::1]:50051',
      'k8s:///orders.default:50051',
      'k8s:///orders.default.svc.cluster.local:grpc',
      'k8s:///orders:grpc',
      'k8s://prod/orders:grpc',
      'kubernetes:///orders.prod:8080',
      'file:///etc/switchyard/endpoints.yaml',
      'file:endpoints.yaml',
      'static:///10.0.0.1:50051,10.0.0.2:50051',
      'static:10.0.0.1:50051',
      ['10.0.0.1:50051', { address: '[fd00::1]:50051', labels: { zone: 'b' } }],
    ]) {
      expect(attempt(target, { kubernetes: { kubeConfig: '/nonexistent/kubeconfig' } })).toBe(
        'created',
      );
    }
  });

  it('names what is wrong with a target it cannot read', () => {
    expect([
      attempt('orders.default.svc:50051'),
      attempt('http://orders:50051'),
      attempt('dns:///orders.default.svc'),
      attempt('dns://resolver.local/orders:50051'),
      attempt('dns:///orders:99999'),
      attempt('k8s:///Orders.default:50051'),
      attempt('k8s:///orders.default'),
      attempt('file://host/etc/endpoints.yaml'),
      attempt('file:'),
      attempt('static:///10.0.0.1'),
      attempt('static:///'),
      attempt([]),
    ]).toMatchInlineSnapshot(`
      [
        "TypeError: balanced channel target "orders.default.svc:50051": unknown scheme "orders.default.svc:"; expected dns:///host:port, k8s:///service.namespace:port, file:///path/to/endpoints.yaml, static:///host:port,host:port, an array of "host:port", or a Discovery",
        "TypeError: balanced channel target "http://orders:50051": unknown scheme "http:"; expected dns:///host:port, k8s:///service.namespace:port, file:///path/to/endpoints.yaml, static:///host:port,host:port, an array of "host:port", or a Discovery",
        "TypeError: balanced channel target "dns:///orders.default.svc": "orders.default.svc" is not host:port (write an IPv6 address as [::1]:50051)",
        "TypeError: balanced channel target "dns://resolver.local/orders:50051": the DNS server "resolver.local" is not an IP address or ip:port",
        "TypeError: balanced channel target "dns:///orders:99999": port 99999 of orders is not in 1..65535",
        "TypeError: balanced channel target "k8s:///Orders.default:50051": expected k8s:///service.namespace:port (namespace optional; port a number or the Service port name)",
        "TypeError: balanced channel target "k8s:///orders.default": expected k8s:///service.namespace:port (namespace optional; port a number or the Service port name)",
        "TypeError: balanced channel target "file://host/etc/endpoints.yaml": File URL host must be "localhost" or empty on linux (write file:///absolute/path or file:relative/path)",
        "TypeError: balanced channel target "file:": names no file",
        "TypeError: balanced channel target "static:///10.0.0.1": "10.0.0.1" is not host:port (write an IPv6 address as [::1]:50051)",
        "TypeError: balanced channel target "static:///": lists no endpoint",
        "TypeError: balanced channel target []: lists no endpoint",
      ]
    `);
  });

  it('names an unknown balancer, a bad option and a service config that picks its own policy', () => {
    expect([
      attempt(['10.0.0.1:50051'], { balancer: 'least-loaded' as 'round-robin' }),
      attempt(['10.0.0.1:50051'], { defaultRttMs: 0 }),
      attempt(['10.0.0.1:50051'], { outlier: { consecutiveFailures: -1 } }),
      attempt(['10.0.0.1:50051'], { outlier: { maxEjectedPercent: 200 } }),
      attempt(['10.0.0.1:50051'], { channelOptions: { 'grpc.service_config': '{' } }),
      attempt(['10.0.0.1:50051'], {
        channelOptions: {
          'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
        },
      }),
    ]).toMatchInlineSnapshot(`
      [
        "TypeError: balanced channel: unknown balancer "least-loaded": expected one of p2c-ewma, p2c-least-request, round-robin",
        "TypeError: balanced channel: peak-EWMA needs defaultRttMs > 0, got 0",
        "TypeError: balanced channel: consecutiveFailures must be a whole number ≥ 1, not -1",
        "TypeError: balanced channel: maxEjectedPercent must be within 0..100, not 200",
        "TypeError: balanced channel: channelOptions['grpc.service_config'] is not JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
        "TypeError: balanced channel: channelOptions['grpc.service_config'] chooses a load-balancing policy; the channel's is set by the \`balancer\` option",
      ]
    `);
  });

  it("names the channel after the target's host, its :authority", () => {
    const authority = (target: Parameters<typeof createBalancedChannel>[0], options = {}) => {
      const channel = createBalancedChannel(target, { onError: () => {}, ...options });
      channel.close();
      return channel.getTarget();
    };
    expect([
      authority('dns:///orders.default.svc.cluster.local:50051'),
      authority('k8s:///orders.prod:grpc', { kubernetes: { kubeConfig: '/nonexistent' } }),
      authority('k8s:///orders:8080', { kubernetes: { kubeConfig: '/nonexistent' } }),
      authority(['10.0.0.1:50051', '10.0.0.2:50051']),
    ]).toEqual([
      'switchyard:///orders.default.svc.cluster.local:50051',
      'switchyard:///orders.prod.svc',
      'switchyard:///orders:8080',
      'switchyard:///10.0.0.1:50051',
    ]);
  });
});
