import { once } from 'node:events';
import { type AddressInfo, createServer, Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 in front of `target` (`host:port`): it counts the connections it
 * accepts, and `blackHole()` makes the ones open now silent both ways without closing them — a
 * connection whose peer vanished (a node gone, a NAT entry dropped). New connections still work.
 */
export async function startRelay(target: string) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.split(':').at(-1))];
  const open = new Set<{ client: Socket; upstream: Socket }>();
  const silent = new Set<{ client: Socket; upstream: Socket }>();
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = new Socket();
    upstream.connect(port, host);
    client.pipe(upstream);
    upstream.pipe(client);
    const pair = { client, upstream };
    open.add(pair);
    const close = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    blackHole() {
      for (const { client, upstream } of open) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        silent.add({ client, upstream });
      }
      open.clear();
    },
    close: async () => {
      for (const { client, upstream } of [...open, ...silent]) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
