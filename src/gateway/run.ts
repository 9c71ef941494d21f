import { createKafka } from '../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../kafka/schema-registry';
import { provisionTopology } from '../stages/pipeline';
import type { ProcessorRegistry } from '../stages/registry';
import { builtinProcessors } from '../stages/builtin';
import type { LoadedTopology } from '../topology/spec';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { connectRedisClient } from '../util/redis';
import { Gateway } from './gateway';
import { GatewayMetrics } from './metrics';
import { DEFAULT_LIMITS, GatewayServer, type GatewayLimits, type GatewayTls } from './server';

export interface GatewayRunOptions {
  topology: LoadedTopology;
  endpoints: { brokers: string[]; schemaRegistryUrl: string; redisUrl?: string };
  host?: string;
  port?: number;
  limits?: Partial<GatewayLimits>;
  token?: string;
  tls?: GatewayTls;
  instanceId?: string;
  keyField?: string;
  partitionBy?: string;
  groupPrefix?: string;
  leaseMs?: number;
  idempotencyTtlMs?: number;
  lateWindowMs?: number;
  processors?: ProcessorRegistry;
}

export interface RunningGateway {
  gateway: Gateway;
  server: GatewayServer;
  metrics: GatewayMetrics;
  url: string;
  stop(): Promise<void>;
}

/** Starts a gateway for a topology: its topics exist (created if not), its reply partition leased, its HTTP server listening. */
export async function runGateway(options: GatewayRunOptions): Promise<RunningGateway> {
  const log = createLogger('gateway');
  const { topology, endpoints } = options;
  if (!endpoints.redisUrl) throw new TributaryError('the gateway needs Redis (REDIS_URL or the local stack) for its reply partition leases and idempotency keys');
  const kafka = createKafka({ clientId: `tributary-gateway-${topology.spec.name}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
  const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
  await provisionTopology(topology, kafka, registry);
  const redis = await connectRedisClient(endpoints.redisUrl);
  const metrics = new GatewayMetrics(undefined, true);
  const limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const gateway = new Gateway({
    topology,
    processors: options.processors ?? builtinProcessors(),
    kafka,
    registry,
    redis,
    metrics,
    log,
    instanceId: options.instanceId,
    keyField: options.keyField,
    partitionBy: options.partitionBy,
    groupPrefix: options.groupPrefix,
    leaseMs: options.leaseMs ?? 10000,
    idempotencyTtlMs: options.idempotencyTtlMs ?? 3_600_000,
    lateWindowMs: options.lateWindowMs ?? 60000,
  });
  try {
    await gateway.start();
  } catch (err) {
    await gateway.stop().catch(() => undefined);
    redis.disconnect();
    throw err;
  }
  const server = new GatewayServer({ gateway, metrics, log, host: options.host ?? '127.0.0.1', port: options.port ?? 8080, limits, token: options.token, tls: options.tls });
  const { url } = await server.start();
  return {
    gateway,
    server,
    metrics,
    url,
    async stop() {
      await server.stop();
      await gateway.stop();
      redis.disconnect();
    },
  };
}
