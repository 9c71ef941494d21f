import * as fs from 'node:fs';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { repoRoot } from '../util/paths';
import type { ArmPosterior } from './thompson';

/** Key layout; the hash tag keeps one experiment's keys in one Redis Cluster slot (the script touches two). */
export function banditKeys(experiment: string): { posterior: string; seen: string; route: (key: string) => string } {
  const tag = `{bandit:${experiment}}`;
  return { posterior: `tributary:${tag}:posterior`, seen: `tributary:${tag}:seen`, route: (key) => `tributary:${tag}:route:${key}` };
}

type WithReward = Redis & { tribBanditReward(posterior: string, seen: string, feedbackId: string, arm: string, reward: string, ttl: number): Promise<number> };

/**
 * Bandit posteriors in Redis: successes/failures per arm, updated by one Lua script
 * (src/routing/scripts/bandit-reward.lua) so concurrent updaters never race and a feedback
 * record replayed after a crash is counted once. State survives restarts of every process.
 */
export class BanditStore {
  private readonly redis: WithReward;
  private readonly keys: ReturnType<typeof banditKeys>;

  constructor(
    redis: Redis,
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
    const pipeline = this.redis.pipeline();
    for (const r of routes) pipeline.set(this.keys.route(r.key), `${r.arm}|${r.label ? 1 : 0}`, 'EX', this.ttlSeconds);
    await pipeline.exec();
  }

  async routesOf(keys: string[]): Promise<({ arm: string; label: boolean } | null)[]> {
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys.map((k) => this.keys.route(k)));
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
