import { connectRedisClient } from '../util/redis';
import * as path from 'node:path';
import { repoRoot } from '../util/paths';
import type { LoadedTopology } from '../topology/spec';
import { createLogger } from '../util/logger';
import { loadFeatureFile, type LoadResult } from './load-file';
import { StreamingState } from './streaming';

const log = createLogger('features');

/**
 * Demo/test preparation of a topology's feature sets: loads every batch set that declares a
 * `config.file` (same loader as `tributary features load`: new version + atomic flip) and, with
 * `resetStreaming`, deletes the streaming state of its extraction stages (a fresh synthetic stream).
 * `redateTo` re-dates every file so its newest row has this time (see LoadOptions).
 */
export async function prepareFeatureSets(topology: LoadedTopology, redisUrl: string, opts: { resetStreaming?: boolean; groupPrefix?: string; redateTo?: number } = {}): Promise<LoadResult[]> {
  const redis = await connectRedisClient(redisUrl);
  try {
    const results: LoadResult[] = [];
    for (const set of topology.spec.features?.sets ?? []) {
      if (set.kind !== 'redis_batch' || !set.config.file) continue;
      const res = await loadFeatureFile(redis, set, { file: path.resolve(repoRoot(), set.config.file), onBadRow: 'skip', redateTo: opts.redateTo });
      log.info({ set: res.set, version: res.version, rows: res.rows, bad: res.bad.length, seconds: res.seconds }, 'batch feature set loaded');
      results.push(res);
    }
    if (opts.resetStreaming) {
      for (const st of topology.spec.stages) {
        const cfg = st.config as { features?: string[]; stateNamespace?: string };
        if (st.processor !== 'feature_extraction' || !cfg.features?.length) continue;
        await new StreamingState(redis, cfg.stateNamespace ?? `${opts.groupPrefix ?? topology.spec.name}.${st.name}`, []).reset();
      }
    }
    return results;
  } finally {
    redis.disconnect();
  }
}
