import type { Command } from 'commander';
import { runGateway } from '../../gateway/run';
import { resolveEndpoints } from '../../stack/endpoints';
import { UsageError, port, positiveInt } from '../options';
import { chosenTopology, loadTopologyFile, POSITIONAL_TOPOLOGY_HELP, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { onShutdownSignal } from './pipeline';

interface GatewayCliOptions {
  topology?: string;
  port: number;
  host: string;
  tokenEnv: string;
  maxInFlight: number;
  maxConnections: number;
  maxBodyBytes: number;
  timeoutMs: number;
  maxTimeoutMs: number;
  keyField?: string;
  partitionBy?: string;
  instanceId?: string;
  leaseMs: number;
  idempotencyTtlMs: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
}

export function registerGatewayCommands(program: Command): void {
  program
    .command('gateway')
    .description('HTTP/SSE gateway over a running topology: POST /v1/predict (answer: the prediction), POST /v1/stream (Server-Sent Events), playground at /')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .option('--port <port>', 'port (0 = any free port)', port, 8080)
    .option('--host <host>', 'address to bind', process.env.TRIBUTARY_GATEWAY_HOST ?? '127.0.0.1')
    .option('--token-env <name>', 'environment variable holding the bearer token clients must send (unset variable: no auth)', 'TRIBUTARY_GATEWAY_TOKEN')
    .option('--max-in-flight <n>', 'requests waiting for their outcome before 429', positiveInt, 1000)
    .option('--max-connections <n>', 'open connections before 503', positiveInt, 4000)
    .option('--max-body-bytes <n>', 'request body limit (413 beyond)', positiveInt, 65536)
    .option('--timeout-ms <ms>', 'deadline when the client gives none', positiveInt, 5000)
    .option('--max-timeout-ms <ms>', 'cap of a client\'s timeoutMs', positiveInt, 30000)
    .option('--key-field <path>', 'field of the input event used as the Kafka key (default: its first string field)')
    .option('--partition-by <path>', 'partition by this field instead of the key (e.g. the streaming features\' entity)')
    .option('--instance-id <id>', 'names this instance in leases and idempotency records (default random)')
    .option('--lease-ms <ms>', 'reply partition lease TTL: how soon another instance takes over a killed one\'s requests', positiveInt, 10000)
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--tls-client-ca <file>', 'mutual TLS: accept only clients with a certificate signed by this CA (PEM)')
    .option('--idempotency-ttl-ms <ms>', 'how long idempotency keys live (at most the reply topic\'s retention, 1 h)', positiveInt, 3_600_000)
    .action(async (file: string | undefined, opts: GatewayCliOptions) => {
      const topology = loadTopologyFile(chosenTopology(file, opts.topology));
      if (opts.timeoutMs > opts.maxTimeoutMs) throw new UsageError(`--timeout-ms (${opts.timeoutMs}) exceeds --max-timeout-ms (${opts.maxTimeoutMs})`);
      const token = process.env[opts.tokenEnv] || undefined;
      if (!!opts.tlsCert !== !!opts.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
      if (opts.tlsClientCa && !opts.tlsCert) throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key');
      const running = await runGateway({
        topology,
        endpoints: resolveEndpoints(),
        host: opts.host,
        port: opts.port,
        token,
        tls: opts.tlsCert && opts.tlsKey ? { certFile: opts.tlsCert, keyFile: opts.tlsKey, clientCaFile: opts.tlsClientCa } : undefined,
        limits: { maxInFlight: opts.maxInFlight, maxConnections: opts.maxConnections, maxBodyBytes: opts.maxBodyBytes, defaultTimeoutMs: opts.timeoutMs, maxTimeoutMs: opts.maxTimeoutMs },
        keyField: opts.keyField,
        partitionBy: opts.partitionBy,
        instanceId: opts.instanceId,
        leaseMs: opts.leaseMs,
        idempotencyTtlMs: opts.idempotencyTtlMs,
      });
      process.stdout.write(`${JSON.stringify({ url: running.url, instance: running.gateway.instanceId, replyPartition: running.gateway.replyPartition })}\n`);
      onShutdownSignal(() => running.stop());
    });
}
