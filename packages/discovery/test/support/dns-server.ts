import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import * as dnsPacket from 'dns-packet';

/** What the server holds for one name. */
export interface Zone {
  A?: string[];
  AAAA?: string[];
  SRV?: { target: string; port: number }[];
}

/**
 * A real authoritative DNS server on 127.0.0.1 (UDP), answering from `zones`, which a test
 * changes between queries. `failWith` makes every answer an error code instead.
 */
export async function startDnsServer(zones: Record<string, Zone>) {
  const socket = createSocket('udp4');
  const queries: { name: string; type: string; at: number }[] = [];
  const state = { zones, failWith: undefined as 'SERVFAIL' | 'NXDOMAIN' | undefined };
  socket.on('message', (message, peer) => {
    const query = dnsPacket.decode(message);
    const question = query.questions?.[0];
    if (!question) return;
    queries.push({ name: question.name, type: question.type, at: performance.now() });
    const zone = state.zones[question.name.toLowerCase()];
    const answers: dnsPacket.Answer[] = [];
    if (zone && !state.failWith) {
      for (const data of question.type === 'A' ? (zone.A ?? []) : []) {
        answers.push({ type: 'A', name: question.name, ttl: 5, data });
      }
      for (const data of question.type === 'AAAA' ? (zone.AAAA ?? []) : []) {
        answers.push({ type: 'AAAA', name: question.name, ttl: 5, data });
      }
      for (const { target, port } of question.type === 'SRV' ? (zone.SRV ?? []) : []) {
        answers.push({
          type: 'SRV',
          name: question.name,
          ttl: 5,
          data: { target, port, priority: 10, weight: 50 },
        });
      }
    }
    // Answers come back in a different order each time, as round-robin DNS servers do.
    answers.sort(() => Math.random() - 0.5);
    const rcode =
      state.failWith === 'SERVFAIL' ? 2 : state.failWith === 'NXDOMAIN' || !zone ? 3 : 0;
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: query.questions,
      answers,
    });
    socket.send(response, peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    server: `127.0.0.1:${socket.address().port}`,
    state,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
