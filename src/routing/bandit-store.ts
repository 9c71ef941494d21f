import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { repoRoot } from '../util/paths';
import type { ArmPosterior } from './thompson';

/**
 * Key layout, the same on a single Redis and a Redis Cluster:
 * - the posterior and the set of counted feedback ids share the hash tag `{bandit:<experiment>}`,
 *   so they sit in one Cluster slot (the reward script touches both atomically);
 * - a route (which arm served a key) has no tag: route keys spread over the Cluster's shards
 *   (one experiment serves many keys) and are read with single GETs where they span slots.
 * Until issue 13 routes shared the experiment's tag (`legacyRoute`): those keys are still read on a
 * single Redis (their only possible home then) until they expire, one route TTL after an upgrade.
 */
export function banditKeys(experiment: string): { posterior: string; seen: string; route: (key: string) => string; legacyRoute: (key: string) => string } {
  const tag = `{bandit:${experiment}}`;
  return {
    posterior: `tributary:${tag}:posterior`,
    seen: `tributary:${tag}:seen`,
    route: (key) => `tributary:bandit-route:${experiment}:${key}`,
    legacyRoute: (key) => `tributary:${tag}:route:${key}`,
  };
}

type RedisClient = Redis | Cluster;
type WithReward = RedisClient & { tribBanditReward(posterior: string, seen: string, feedbackId: string, arm: string, reward: string, ttl: number): Promise<number> };

/**
 * Bandit posteriors in Redis (a single node or a Cluster): successes/failures per arm, updated by
 * one Lua script (src/routing/scripts/bandit-reward.lua) so concurrent updaters never race and a
 * feedback record replayed after a crash is counted once. State survives restarts of every process.
 */
export class BanditStore {
  private readonly redis: WithReward;
  private readonly keys: ReturnType<typeof banditKeys>;

  constructor(
    redis: RedisClient,
    readonly experiment: string,
    private readonly ttlSeconds = 7 * 24 * 3600,
  ) {
    this.redis = redis as WithReward;
    if (!(redis as { tribBanditReward?: unknown }).tribBanditReward) {
      redis.defineCommand('tribBanditReward', { numberOfKeys: 2, lua: fs.readFileSync(path.join(repoRoot(), 'src', 'routing', 'scripts', 'bandit-reward.lua'), 'utf8') });
    }
    this.keys = banditKeys(experiment);
  }

  /** Counts a reward once per feedback id; returns false for a replay. */
  async reward(feedbackId: string, arm: string, success: boolean): Promise<boolean> {
    return (await this.redis.tribBanditReward(this.keys.posterior, this.keys.seen, feedbackId, arm, success ? '1' : '0', this.ttlSeconds)) === 1;
  }

  async posteriors(arms: string[]): Promise<ArmPosterior[]> {
    const values = await this.redis.hmget(this.keys.posterior, ...arms.flatMap((a) => [`${a}:s`, `${a}:f`]));
    return arms.map((arm, i) => ({ arm, successes: Number(values[2 * i] ?? 0), failures: Number(values[2 * i + 1] ?? 0) }));
  }

  /** Remembers which arm served a key and what it decided (for joining feedback that arrives later). */
  async recordRoutes(routes: { key: string; arm: string; label: boolean }[]): Promise<void> {
    if (routes.length === 0) return;
    const value = (r: { arm: string; label: boolean }) => `${r.arm}|${r.label ? 1 : 0}`;
    if (this.redis.isCluster) {
      // Route keys span slots, which one Cluster pipeline refuses: single SETs, auto-pipelined per node by the client.
      await Promise.all(routes.map((r) => this.redis.set(this.keys.route(r.key), value(r), 'EX', this.ttlSeconds)));
      return;
    }
    const pipeline = (this.redis as Redis).pipeline();
    for (const r of routes) pipeline.set(this.keys.route(r.key), value(r), 'EX', this.ttlSeconds);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async routesOf(keys: string[]): Promise<({ arm: string; label: boolean } | null)[]> {
    if (keys.length === 0) return [];
    let values: (string | null)[];
    if (this.redis.isCluster) {
      // MGET needs one slot; the route keys span slots: single GETs, auto-pipelined per node.
      values = await Promise.all(keys.map((k) => this.redis.get(this.keys.route(k))));
    } else {
      // One round trip for the current keys and the pre-issue-13 ones (see banditKeys).
      const both = await (this.redis as Redis).mget(...keys.map((k) => this.keys.route(k)), ...keys.map((k) => this.keys.legacyRoute(k)));
      values = keys.map((_, i) => both[i] ?? both[keys.length + i]);
    }
    return values.map((v) => {
      if (!v) return null;
      const [arm, label] = v.split('|');
      return { arm, label: label === '1' };
    });
  }

  async reset(): Promise<void> {
    await this.redis.del(this.keys.posterior, this.keys.seen);
  }
}
