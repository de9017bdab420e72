import { describe, expect, it } from 'vitest';
import { EndpointPublisher } from '../src/discovery.js';
import {
  canonicalEndpoints,
  type DiscoveryError,
  type DiscoveryUpdate,
  parseEndpoint,
  staticDiscovery,
} from '../src/index.js';

describe('parseEndpoint', () => {
  it('reads IPv4, hostnames and bracketed IPv6', () => {
    expect(parseEndpoint('10.0.0.1:50051')).toEqual({
      address: '10.0.0.1:50051',
      host: '10.0.0.1',
      port: 50051,
    });
    expect(parseEndpoint('api.prod.svc.cluster.local:8080')).toEqual({
      address: 'api.prod.svc.cluster.local:8080',
      host: 'api.prod.svc.cluster.local',
      port: 8080,
    });
    expect(parseEndpoint('[fd00::1]:443', { zone: 'a' })).toEqual({
      address: '[fd00::1]:443',
      host: 'fd00::1',
      port: 443,
      labels: { zone: 'a' },
    });
  });

  it.each([
    ['::1:8080', /not host:port/],
    ['10.0.0.1', /not host:port/],
    ['[10.0.0.1]:80', /not host:port/],
    ['host:0', /port 0 of host is not in 1..65535/],
    ['host:65536', /port 65536 of host is not in 1..65535/],
    ['host :80', /not host:port/],
    ['', /not host:port/],
  ])('rejects %j', (address, error) => {
    expect(() => parseEndpoint(address)).toThrow(error);
  });
});

describe('endpoint sets', () => {
  it('are sorted by address with one endpoint per address, the first given winning', () => {
    const set = canonicalEndpoints([
      parseEndpoint('10.0.0.2:1', { from: 'first' }),
      parseEndpoint('10.0.0.1:1'),
      parseEndpoint('10.0.0.2:1', { from: 'second' }),
    ]);
    expect(set.map((e) => [e.address, e.labels?.from])).toEqual([
      ['10.0.0.1:1', undefined],
      ['10.0.0.2:1', 'first'],
    ]);
  });
});

describe('subscribe', () => {
  it('replays the latest set to each new listener, frozen', () => {
    const discovery = staticDiscovery(['127.0.0.1:2', '127.0.0.1:1', '127.0.0.1:2']);
    const seen: DiscoveryUpdate[] = [];
    discovery.subscribe((u) => seen.push(u));
    discovery.subscribe((u) => seen.push(u));
    expect(seen).toHaveLength(2);
    expect(seen[0]!.endpoints.map((e) => e.address)).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    expect(Object.isFrozen(seen[0]!.endpoints)).toBe(true);
  });

  it('a listener that throws is reported and the others still hear', () => {
    const errors: DiscoveryError[] = [];
    const discovery = staticDiscovery(['127.0.0.1:1'], { onError: (e) => errors.push(e) });
    discovery.subscribe(() => {
      throw new Error('boom');
    });
    let heard = 0;
    discovery.subscribe(() => heard++);
    expect(heard).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(['a discovery listener threw: Error: boom']);
  });

  it('publishes only changes; unsubscribing, even mid-delivery, stops delivery at once', () => {
    const publisher = new EndpointPublisher(() => {});
    const heard: string[] = [];
    let unsubscribeB = () => {};
    publisher.subscribe((u) => {
      heard.push(`a:${u.endpoints.length}`);
      unsubscribeB();
    });
    unsubscribeB = publisher.subscribe((u) => heard.push(`b:${u.endpoints.length}`));
    publisher.publish([parseEndpoint('127.0.0.1:1')]);
    publisher.publish([parseEndpoint('127.0.0.1:1')]);
    publisher.publish([parseEndpoint('127.0.0.1:1', { zone: 'a' })]);
    expect(heard).toEqual(['a:1', 'a:1']);
    publisher.close();
    publisher.publish([]);
    expect(heard).toEqual(['a:1', 'a:1']);
  });

  it('static discovery rejects a bad entry at once', () => {
    expect(() => staticDiscovery(['127.0.0.1:1', 'nope'])).toThrow(/"nope" is not host:port/);
  });
});
