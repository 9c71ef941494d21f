import type { StackEndpoints } from '../util/endpoints';
import { findFreePort } from './ports';

/** Images used when a container engine is available (TRIBUTARY_TESTCONTAINERS=1). */
export const CONTAINER_IMAGES = {
  kafka: 'apache/kafka:3.9.1',
  redis: 'redis:7',
  schemaRegistry: 'confluentinc/cp-schema-registry:7.7.1',
} as const;

export interface ContainerStack {
  endpoints: StackEndpoints;
  stop(): Promise<void>;
}

type TestcontainersModule = typeof import('testcontainers');

export class ContainerEngineError extends Error {
  override readonly name = 'ContainerEngineError';
}

function loadTestcontainers(): TestcontainersModule {
  try {
    // Lazy: `testcontainers` is a devDependency; production code paths never load it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('testcontainers') as TestcontainersModule;
  } catch (err) {
    throw new ContainerEngineError(`The testcontainers package is not installed (${(err as Error).message}); it is a devDependency`);
  }
}

/**
 * Kafka (KRaft), Confluent Schema Registry and Redis as containers on one network. Needs a reachable container
 * engine. The broker's host listener uses the same port number inside and outside the container, so the
 * address it advertises is the one clients on this machine dial.
 */
export async function startContainerStack(): Promise<ContainerStack> {
  const { GenericContainer, Network, Wait, getContainerRuntimeClient } = loadTestcontainers();
  const runtime = await getContainerRuntimeClient().catch((err: Error) => {
    throw new ContainerEngineError(`No container engine is reachable: ${err.message}`);
  });
  const host = runtime.info.containerRuntime.host;
  const hostPort = await findFreePort();

  const network = await new Network().start();
  const started: Array<{ stop(): Promise<unknown> }> = [];
  const stop = async (): Promise<void> => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    await network.stop().catch(() => undefined);
  };
  try {
    const kafka = await new GenericContainer(CONTAINER_IMAGES.kafka)
      .withNetwork(network)
      .withNetworkAliases('kafka')
      .withExposedPorts({ container: hostPort, host: hostPort })
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_LISTENERS: `INTERNAL://0.0.0.0:19092,CONTROLLER://localhost:9093,HOST://0.0.0.0:${hostPort}`,
        KAFKA_ADVERTISED_LISTENERS: `INTERNAL://kafka:19092,HOST://${host}:${hostPort}`,
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,HOST:PLAINTEXT',
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
        KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
        KAFKA_NUM_PARTITIONS: '1',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .withStartupTimeout(180_000)
      .start();
    started.push(kafka);

    const [registry, redis] = await Promise.all([
      new GenericContainer(CONTAINER_IMAGES.schemaRegistry)
        .withNetwork(network)
        .withExposedPorts(8081)
        .withEnvironment({
          SCHEMA_REGISTRY_HOST_NAME: 'schema-registry',
          SCHEMA_REGISTRY_LISTENERS: 'http://0.0.0.0:8081',
          SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: 'PLAINTEXT://kafka:19092',
        })
        .withWaitStrategy(Wait.forHttp('/subjects', 8081).forStatusCode(200))
        .withStartupTimeout(180_000)
        .start()
        .then((c) => (started.push(c), c)),
      new GenericContainer(CONTAINER_IMAGES.redis)
        .withExposedPorts(6379)
        .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
        .start()
        .then((c) => (started.push(c), c)),
    ]);

    return {
      endpoints: {
        brokers: [`${host}:${hostPort}`],
        schemaRegistryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8081)}`,
        redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
        source: 'testcontainers',
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
