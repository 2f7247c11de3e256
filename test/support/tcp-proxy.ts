/**
 * A TCP proxy of the test's own, between the gateway and PostgreSQL: cut() drops every
 * connection and refuses new ones (as a database restart or a failover looks from the gateway);
 * restore() listens again on the same port. The shared server itself is never touched.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** How many client connections are open through the proxy now. */
  openConnections(): number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A cut ends both sides with ECONNRESET; the proxy itself must never throw for it.
    socket.on('error', () => socket.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    const upstream = net.connect(target.port, target.host);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
    });
  const cut = async (): Promise<void> => {
    const closing = close();
    for (const socket of sockets) socket.destroy();
    await closing;
  };
  return {
    port,
    openConnections: () => sockets.size / 2,
    cut,
    restore: () => listen(port),
    stop: cut,
  };
}
