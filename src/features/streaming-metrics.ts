import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the state reports after a batch (from the script's reply), per set name. */
export interface StreamingBatchReport {
  late: Record<string, number>;
  evictedBuckets: Record<string, number>;
  evictedEvents: Record<string, number>;
  replayMissed: number;
}

/** Source of the state-size gauge: per set, bucket summaries and stored events (read on scrape). */
export interface StateSizeSource {
  readonly namespace: string;
  stateSize(): Promise<Record<string, { buckets: number; events: number }>>;
  /** The in-memory entity cache: entities held, their estimated bytes, entities dropped to keep within its bounds (since start). */
  cacheSize?(): { entities: number; bytes: number; evictions: number };
}

/**
 * Streaming-state metrics, created once per prom-client registry (several stages in one process
 * share them, labelled by state namespace and set).
 */
export class StreamingMetrics {
  readonly redisSeconds: Histogram<'namespace'>;
  readonly commitSeconds: Histogram<'namespace'>;
  readonly evictions: Counter<'namespace' | 'set' | 'kind'>;
  readonly lateEvents: Counter<'namespace' | 'set' | 'policy'>;
  readonly replayMissed: Counter<'namespace'>;
  readonly stateBehind: Counter<'namespace'>;
  readonly durabilityTimeouts: Counter<'namespace'>;
  readonly staleCommits: Counter<'namespace' | 'outcome'>;
  readonly stateEntries: Gauge<'namespace' | 'set' | 'kind'>;
  readonly cacheEntities: Gauge<'namespace'>;
  readonly cacheBytes: Gauge<'namespace'>;
  readonly cacheEvictions: Counter<'namespace'>;
  private readonly sources = new Set<StateSizeSource>();
  /** Cache evictions already counted, per source (the counter follows the source's running total). */
  private readonly evictionsSeen = new WeakMap<StateSizeSource, number>();

  private constructor(readonly registry: Registry) {
    const registers = [registry];
    // Round trips from 0.1 ms (a warm batch on loopback) to 1 s (a Redis failing over).
    const roundTrip = (name: string, help: string) => new Histogram({ name, help, labelNames: ['namespace'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.redisSeconds = roundTrip('tributary_streaming_redis_seconds', 'Redis time on the path of one consumed batch of the enrichment (batch-set reads, streaming-state loads, and the state commits unless written behind the vectors: _commit_seconds has those)');
    // Apart from the batch's whole Redis time: the commit is the part on the batch's path after its
    // compute, and its tail against the script's own time in Redis (LATENCY HISTOGRAM evalsha)
    // tells Redis' work from waiting (BENCHMARKS.md item 39).
    this.commitSeconds = roundTrip('tributary_streaming_commit_seconds', 'Round trip of one streaming-state commit (the script of one (partition, slot group) chunk of a batch, durability wait included)');
    this.evictions = new Counter({ name: 'tributary_streaming_evictions_total', help: 'Streaming state evicted by event time: bucket summaries (kind=bucket) and stored events (kind=event)', labelNames: ['namespace', 'set', 'kind'], registers });
    this.lateEvents = new Counter({ name: 'tributary_streaming_late_events_total', help: 'Events later than the allowed lateness (scored, not added), by the set\'s onLate policy', labelNames: ['namespace', 'set', 'policy'], registers });
    this.replayMissed = new Counter({ name: 'tributary_streaming_replay_missed_total', help: 'Replayed events whose stored vector was already trimmed (scored from the current state instead)', labelNames: ['namespace'], registers });
    this.stateBehind = new Counter({ name: 'tributary_streaming_state_behind_total', help: 'Loads that found a (partition, slot group) checkpoint below one this process had committed: acknowledged state writes were lost (e.g. a Redis failover without durability)', labelNames: ['namespace'], registers });
    this.durabilityTimeouts = new Counter({ name: 'tributary_streaming_durability_timeouts_total', help: 'State writes that fewer replicas than the durability asks for acknowledged in time (the batch is retried, not committed)', labelNames: ['namespace'], registers });
    this.staleCommits = new Counter({
      name: 'tributary_streaming_stale_commits_total',
      help: 'State commits refused because another writer changed an entity or the checkpoint first (producers not keyed by the entity, a wrong guess that entities were new): the chunk computed again in place (outcome=recomputed) or, its commit written behind the vectors, the batch run again (outcome=rerun)',
      labelNames: ['namespace', 'outcome'],
      registers,
    });
    const sources = this.sources;
    this.stateEntries = new Gauge({
      name: 'tributary_streaming_state_entries',
      help: 'Streaming state size per set: bucket summaries (kind=bucket) and stored events (kind=event)',
      labelNames: ['namespace', 'set', 'kind'],
      registers,
      async collect() {
        for (const s of sources) {
          const sizes = await s.stateSize().catch(() => ({}) as Record<string, { buckets: number; events: number }>);
          for (const [set, n] of Object.entries(sizes)) {
            this.set({ namespace: s.namespace, set, kind: 'bucket' }, n.buckets);
            this.set({ namespace: s.namespace, set, kind: 'event' }, n.events);
          }
        }
      },
    });
    const cacheOf = (s: StateSizeSource) => s.cacheSize?.();
    /** A gauge per namespace of one figure of the sources' entity caches, read on scrape. */
    const cacheGauge = (name: string, help: string, figure: (c: { entities: number; bytes: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['namespace'],
        registers,
        collect() {
          for (const s of sources) {
            const c = cacheOf(s);
            if (c) this.set({ namespace: s.namespace }, figure(c));
          }
        },
      });
    this.cacheEntities = cacheGauge('tributary_streaming_cache_entities', 'Entities whose window state this process holds in memory (an LRU bounded by entities and estimated bytes)', (c) => c.entities);
    this.cacheBytes = cacheGauge('tributary_streaming_cache_bytes', 'Estimated bytes of the window state held in memory (bounded by the stage\'s stateCache.maxBytes)', (c) => c.bytes);
    const seen = this.evictionsSeen;
    this.cacheEvictions = new Counter({
      name: 'tributary_streaming_cache_evictions_total',
      help: 'Entities dropped from the in-memory window state to stay within its bounds (reloaded from Redis when touched again)',
      labelNames: ['namespace'],
      registers,
      collect() {
        for (const s of sources) {
          const c = cacheOf(s);
          if (!c) continue;
          const delta = c.evictions - (seen.get(s) ?? 0);
          if (delta > 0) this.inc({ namespace: s.namespace }, delta);
          seen.set(s, c.evictions);
        }
      },
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, StreamingMetrics>();

  static for(registry: Registry): StreamingMetrics {
    let m = StreamingMetrics.byRegistry.get(registry);
    if (!m) {
      m = new StreamingMetrics(registry);
      StreamingMetrics.byRegistry.set(registry, m);
    }
    return m;
  }

  /** Reports a state's size on scrape until `untrack`. */
  track(source: StateSizeSource): void {
    this.sources.add(source);
  }

  untrack(source: StateSizeSource): void {
    this.sources.delete(source);
  }

  record(namespace: string, report: StreamingBatchReport, policyOf: (set: string) => string): void {
    for (const [set, n] of Object.entries(report.late)) this.lateEvents.inc({ namespace, set, policy: policyOf(set) }, n);
    for (const [set, n] of Object.entries(report.evictedBuckets)) this.evictions.inc({ namespace, set, kind: 'bucket' }, n);
    for (const [set, n] of Object.entries(report.evictedEvents)) this.evictions.inc({ namespace, set, kind: 'event' }, n);
    if (report.replayMissed > 0) this.replayMissed.inc({ namespace }, report.replayMissed);
  }
}
