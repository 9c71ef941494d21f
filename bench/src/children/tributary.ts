/**
 * System under test #2: Tributary's demo topology (extract -> score), both stages in this one process,
 * exactly as `tributary run` runs them, on the bench's suffixed topics.
 */
import { Pipeline } from '../../../src/stages/pipeline';
import { benchTopology, childConfig, tell } from '../common';

async function main(): Promise<void> {
  const cfg = childConfig();
  const topology = benchTopology(cfg.suffix, cfg.partitions);
  const pipeline = await Pipeline.start({ topology, endpoints: { brokers: cfg.brokers, schemaRegistryUrl: cfg.schemaRegistryUrl, redisUrl: cfg.redisUrl } });
  tell({ type: 'ready' });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await pipeline.stop();
    const counters: Record<string, number> = {};
    for (const r of pipeline.runners) for (const [k, v] of Object.entries(r.counters)) counters[`${r.groupId.split('.').pop()}.${k}`] = v;
    tell({ type: 'stopped', counters });
    // process.exit (not a signal) so that --cpu-prof writes its profile
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', () => void stop());
  process.on('message', (m: { type?: string }) => m?.type === 'stop' && void stop());
}

main().catch((err) => {
  tell({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
