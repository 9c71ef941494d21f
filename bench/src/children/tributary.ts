/**
 * System under test: a Tributary topology variant (see ../topologies.ts), every stage in this one
 * process via `Pipeline.start`, on the bench's suffixed topics, with the code of the checkout named
 * in the config (this one by default). `fuse` is passed through: `true` runs consecutive stages as
 * one chain, `false` each stage its own consumer group; an engine without the option ignores it.
 */
import type { PipelineOptions } from '../../../src/stages/pipeline';
import { childConfig, tell } from '../common';
import { loadVariant } from '../topologies';
import { loadCode, ownCode } from '../tributary-code';

async function main(): Promise<void> {
  const cfg = childConfig();
  const code = loadCode(cfg.code ?? ownCode());
  const topology = loadVariant(code, { variant: cfg.variant ?? 'default', suffix: cfg.suffix, partitions: cfg.partitions, delivery: cfg.delivery, commit: cfg.commit, transactions: cfg.transactions });
  const options: PipelineOptions & { fuse?: boolean } = { topology, endpoints: { brokers: cfg.brokers, schemaRegistryUrl: cfg.schemaRegistryUrl, redisUrl: cfg.redisUrl }, fuse: cfg.fuse };
  const pipeline = await code.pipeline.Pipeline.start(options);
  tell({ type: 'ready' });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await pipeline.stop();
    const counters: Record<string, number> = {};
    // today's engine exposes its stage runners; a rewritten one may not
    const runners = (pipeline as unknown as { runners?: Array<{ groupId: string; counters: Record<string, number> }> }).runners ?? [];
    for (const r of runners) for (const [k, v] of Object.entries(r.counters)) counters[`${r.groupId.split('.').pop()}.${k}`] = v;
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
