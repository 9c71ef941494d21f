import * as net from 'net';

export const LOCALHOST = '127.0.0.1';

function listenOnFreePort(host: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * `count` distinct TCP ports that are free on `host` right now. All probe sockets are held open together
 * so the ports differ; another process can still take one before the caller binds it.
 */
export async function findFreePorts(count: number, host: string = LOCALHOST): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i += 1) servers.push(await listenOnFreePort(host));
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map(close));
  }
}

export async function findFreePort(host: string = LOCALHOST): Promise<number> {
  const [port] = await findFreePorts(1, host);
  return port!;
}
