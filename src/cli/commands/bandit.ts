import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { ensureTopics } from '../../kafka/admin';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { BanditRewarder } from '../../routing/bandit-rewarder';
import { BanditStore } from '../../routing/bandit-store';
import { thompsonShares } from '../../routing/thompson';
import { resolveEndpoints } from '../../util/endpoints';
import { connectRedisClient } from '../../util/redis';
import { TributaryError } from '../../util/errors';
import { DEFAULT_TOPOLOGY, loadTopologyFile, TOPOLOGY_FLAGS } from '../topology-file';
import { wantsJson } from '../options';
import { onShutdownSignal } from './pipeline';

interface RoutedStage {
  experiment: string;
  arms: string[];
  predictionsTopic: string;
  group: string;
}

function routedStage(topologyFile: string, stageName: string): RoutedStage {
  const topology = loadTopologyFile(topologyFile);
  const stage = topology.spec.stages.find((s) => s.name === stageName);
  const routing = (stage?.config as { routing?: { experiment: string; arms: { name: string }[] } } | undefined)?.routing;
  if (!stage || !routing) throw new TributaryError(`stage '${stageName}' of ${topology.file} has no routing`);
  return { experiment: routing.experiment, arms: routing.arms.map((a) => a.name), predictionsTopic: stage.output.topic, group: `${topology.spec.name}.${stage.name}.bandit` };
}

export function registerBanditCommands(program: Command): void {
  const bandit = program.command('bandit').description('multi-armed bandit routing between model versions');
  bandit
    .command('reward')
    .description('join labels from a feedback topic to the arm that served each key and update the posteriors (runs until stopped)')
    .requiredOption('--feedback <topic>', 'feedback topic (schema feedback)')
    .option(TOPOLOGY_FLAGS, 'topology file', DEFAULT_TOPOLOGY)
    .option('--stage <name>', 'the routed onnx_inference stage', 'score')
    .action(async (opts: { feedback: string; topology: string; stage: string }) => {
      const routed = routedStage(opts.topology, opts.stage);
      const endpoints = resolveEndpoints();
      const kafka = createKafka({ clientId: 'tributary-bandit', brokers: endpoints.brokers });
      await ensureTopics(kafka, [{ name: opts.feedback, partitions: 3, schema: 'feedback' }]);
      const redis = await connectRedisClient(endpoints.redisUrl);
      const rewarder = new BanditRewarder({ kafka, registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }), redis, experiment: routed.experiment, predictionsTopic: routed.predictionsTopic, feedbackTopic: opts.feedback, groupId: routed.group });
      await rewarder.start();
      onShutdownSignal(async () => {
        await rewarder.stop();
        redis.disconnect();
      });
    });
  bandit
    .command('status')
    .description('posteriors and Thompson shares of a routed stage\'s experiment')
    .option(TOPOLOGY_FLAGS, 'topology file', DEFAULT_TOPOLOGY)
    .option('--stage <name>', 'the routed onnx_inference stage', 'score')
    .action(async (opts: { topology: string; stage: string }, cmd: Command) => {
      const routed = routedStage(opts.topology, opts.stage);
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
      try {
        const posteriors = await new BanditStore(redis, routed.experiment).posteriors(routed.arms);
        const shares = thompsonShares(posteriors);
        if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ experiment: routed.experiment, posteriors, shares }, null, 2)}\n`);
        else {
          process.stdout.write(`experiment ${routed.experiment}\n`);
          for (const p of posteriors) {
            const n = p.successes + p.failures;
            process.stdout.write(`  ${p.arm.padEnd(16)} rewards ${String(n).padStart(7)}  success ${(n ? p.successes / n : NaN).toFixed(3)}  thompson share ${(shares[p.arm] * 100).toFixed(1)}%\n`);
          }
        }
      } finally {
        redis.disconnect();
      }
    });
}
