import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { artifactPaths } from '../../src/stack/artifacts';
import { kafkaProcessMarkers, launchKafkaServer } from '../../src/stack/kafka-server';
import { findFreePort, findFreePorts } from '../../src/stack/ports';
import { stopProcess } from '../../src/stack/process';
import { launchRedisServer, redisProcessMarkers } from '../../src/stack/redis-server';
import { generateTlsMaterial, type TlsMaterial } from '../../src/stack/tls';

/**
 * A Kafka broker with an SSL listener and a Redis serving TLS only, both of their own (started with the
 * stack's own launchers and a CA generated for the occasion), so the shared plaintext stack is untouched.
 */
export class DedicatedTlsServers {
  private constructor(
    readonly material: TlsMaterial,
    readonly brokers: string[],
    readonly redisUrl: string,
    private readonly kafka: { pid: number; dataDir: string },
    private readonly redis: { pid: number; port: number },
    private readonly root: string,
  ) {}

  static async start(): Promise<DedicatedTlsServers> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-tls-'));
    const material = await generateTlsMaterial(path.join(root, 'certs'));
    const [kafkaPort, controllerPort, redisPort] = await findFreePorts(3);
    const kafkaDir = path.join(root, 'kafka');
    const [kafka, redis] = await Promise.all([
      launchKafkaServer({ classpath: artifactPaths().kafkaClasspath, dataDir: kafkaDir, port: kafkaPort, controllerPort, tls: material }),
      launchRedisServer({ dataDir: path.join(root, 'redis'), port: redisPort, tls: material }),
    ]);
    const servers = new DedicatedTlsServers(material, kafka.info.brokers, redis.info.url, { pid: kafka.info.pid, dataDir: kafkaDir }, { pid: redis.info.pid, port: redisPort }, root);
    try {
      await Promise.all([kafka.waitUntilReady(90_000), redis.waitUntilReady(15_000)]);
    } catch (err) {
      await servers.destroy();
      throw err;
    }
    return servers;
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([
      stopProcess(this.kafka.pid, kafkaProcessMarkers(this.kafka.dataDir), 30_000),
      stopProcess(this.redis.pid, redisProcessMarkers(this.redis.port), 10_000),
    ]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * An HTTP reverse proxy that enforces basic auth in front of a registry that has none (Apicurio's own
 * auth needs Keycloak): 401 without the right `Authorization`, otherwise the request goes upstream
 * unchanged (minus the credentials). Counts what it let through and what it refused.
 */
export class AuthenticatingProxy {
  accepted = 0;
  refused = 0;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly upstream: URL,
  ) {}

  /** The upstream base URL with this proxy's host and port (same path, e.g. Apicurio's /apis/ccompat/v7). */
  get url(): string {
    const u = new URL(this.upstream.href);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.href.replace(/\/$/, '');
  }

  static async start(upstreamUrl: string, username: string, password: string): Promise<AuthenticatingProxy> {
    const upstream = new URL(upstreamUrl);
    const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    const port = await findFreePort();
    let proxy: AuthenticatingProxy | undefined;
    const server = http.createServer((req, res) => {
      if (req.headers.authorization !== expected) {
        proxy!.refused++;
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="registry"' });
        res.end(JSON.stringify({ error_code: 401, message: 'Unauthorized' }));
        return;
      }
      proxy!.accepted++;
      const headers = { ...req.headers, host: upstream.host };
      delete headers.authorization;
      const forward = http.request({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      forward.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`upstream error: ${err.message}`);
      });
      req.pipe(forward);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    proxy = new AuthenticatingProxy(server, port, upstream);
    return proxy;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
