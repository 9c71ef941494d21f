import type { Admin, Kafka } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { createLogger } from '../util/logger';

const log = createLogger('monitoring');

export interface LaggingGroup {
  stage: string;
  groupId: string;
  topic: string;
}

interface LagState {
  kafka: Kafka;
  admin?: Promise<Admin>;
  groups: LaggingGroup[];
  cached?: { at: number; rows: { stage: string; topic: string; partition: string; lag: number }[] };
}

const lagByRegistry = new WeakMap<Registry, LagState>();

/**
 * `tributary_stage_consumer_lag_messages{stage,topic,partition}`: log-end offset minus the group's
 * committed offset, read from the broker when /metrics is scraped (cached for `cacheMs`). Committed
 * lag, so it includes the batch in flight; a partition without a committed offset counts from its
 * log start. On a transactionally written input topic the last commit marker takes an offset, so a
 * caught-up partition shows 1.
 */
export function registerConsumerLag(registry: Registry, kafka: Kafka, groups: LaggingGroup[], cacheMs = 1000): void {
  let state = lagByRegistry.get(registry);
  if (state) {
    // A pipeline restarted on the same registry: its client replaces the old one, its groups are added once.
    if (state.kafka !== kafka) {
      void closeConsumerLag(registry);
      state.kafka = kafka;
    }
    for (const g of groups) if (!state.groups.some((x) => x.stage === g.stage && x.groupId === g.groupId && x.topic === g.topic)) state.groups.push(g);
    state.cached = undefined;
    return;
  }
  state = { kafka, groups: [...groups] };
  lagByRegistry.set(registry, state);
  const s = state;
  new Gauge({
    name: 'tributary_stage_consumer_lag_messages',
    help: 'Records in a stage\'s input partition not yet committed by its consumer group (log-end minus committed offset)',
    labelNames: ['stage', 'topic', 'partition'],
    registers: [registry],
    async collect() {
      if (!s.cached || Date.now() - s.cached.at > cacheMs) {
        try {
          s.cached = { at: Date.now(), rows: await readLag(s) };
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'reading consumer lag failed');
          s.admin = undefined;
          s.cached = { at: Date.now(), rows: [] };
        }
      }
      this.reset();
      for (const r of s.cached.rows) this.set({ stage: r.stage, topic: r.topic, partition: r.partition }, r.lag);
    },
  });
}

/** Disconnects the lag reader's admin client of this registry (pipeline stop). */
export async function closeConsumerLag(registry: Registry): Promise<void> {
  const s = lagByRegistry.get(registry);
  if (!s?.admin) return;
  const admin = s.admin;
  s.admin = undefined;
  await (await admin.catch(() => undefined))?.disconnect();
}

async function readLag(s: LagState) {
  s.admin ??= (async () => {
    const a = s.kafka.admin();
    await a.connect();
    return a;
  })();
  const admin = await s.admin;
  const rows: { stage: string; topic: string; partition: string; lag: number }[] = [];
  for (const g of s.groups) {
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(g.topic), admin.fetchOffsets({ groupId: g.groupId, topics: [g.topic] })]);
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    for (const e of ends) {
      const c = done.get(e.partition);
      const from = c === undefined || c < 0 ? Number(e.low) : c;
      rows.push({ stage: g.stage, topic: g.topic, partition: String(e.partition), lag: Math.max(0, Number(e.high) - from) });
    }
  }
  return rows;
}

interface CacheSource {
  stats: () => { cacheHits: number; cacheMisses: number };
  /** What this source has already added to the counter. */
  seen: { hit: number; miss: number };
}

const cacheByRegistry = new WeakMap<Registry, Map<string, CacheSource>>();

/**
 * Feature cache counters of enriching extraction stages, read from the enricher's own counts at
 * scrape time: `tributary_feature_cache_requests_total{stage,result="hit"|"miss"}` (hit rate =
 * hit / (hit + miss)).
 */
export function registerFeatureCache(registry: Registry, stage: string, stats: CacheSource['stats']): void {
  let sources = cacheByRegistry.get(registry);
  if (!sources) {
    sources = new Map();
    cacheByRegistry.set(registry, sources);
    const list = sources;
    new Counter({
      name: 'tributary_feature_cache_requests_total',
      help: 'Batch feature lookups answered by the in-process cache (hit) or from Redis (miss)',
      labelNames: ['stage', 'result'],
      registers: [registry],
      collect() {
        for (const [name, src] of list) {
          const st = src.stats();
          for (const [result, v] of [['hit', st.cacheHits], ['miss', st.cacheMisses]] as const) {
            this.inc({ stage: name, result }, Math.max(0, v - src.seen[result]));
            src.seen[result] = Math.max(v, src.seen[result]);
          }
        }
      },
    });
  }
  // A restarted stage's enricher counts from 0 again: it replaces the old source, the counter keeps its total.
  sources.set(stage, { stats, seen: { hit: 0, miss: 0 } });
}
