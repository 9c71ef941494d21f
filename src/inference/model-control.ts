import * as crypto from 'node:crypto';
import * as os from 'node:os';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';

/**
 * The control plane of hot swaps, in Redis, per stage deployment (its consumer group):
 *
 *   tributary:model-control:<group>:desired   JSON {version, requestId, at, by}   (set by `tributary models promote|rollback`)
 *   tributary:model-control:<group>:status    hash: instance id -> JSON ServingStatus  (written by each running instance)
 *   tributary:model-control:<group>:events    list of JSON SwapEvent, newest first, capped
 *   tributary:model-control:<group>:notify    pub/sub channel: a new desired version was set (instances also poll)
 *
 * Every instance of a stage reads the same desired version, so one command moves a whole
 * deployment; each instance gates the candidate itself and reports its own result.
 */
export const CONTROL_PREFIX = 'tributary:model-control';

export const controlKeys = (group: string) => ({
  desired: `${CONTROL_PREFIX}:${group}:desired`,
  status: `${CONTROL_PREFIX}:${group}:status`,
  events: `${CONTROL_PREFIX}:${group}:events`,
  notify: `${CONTROL_PREFIX}:${group}:notify`,
});

export const MAX_EVENTS = 100;

export interface DesiredVersion {
  version: string;
  /** New per command: a refused version is tried again only by a new request (or once its files change). */
  requestId: string;
  at: string;
  by: string;
  /** promote | rollback */
  action: string;
}

export type SwapResult = 'swapped' | 'refused';

export interface SwapEvent {
  at: string;
  instance: string;
  model: string;
  from: string;
  to: string;
  result: SwapResult;
  /** promote | rollback | latest-approved | startup */
  trigger: string;
  reason?: string;
  durationMs: number;
}

export interface ServingStatus {
  instance: string;
  stage: string;
  model: string;
  live: string;
  previous?: string;
  /** The hot swap policy: explicit (promote/rollback) or latest-approved (repository watch). */
  policy: string;
  lastSwap?: SwapEvent;
  /** Versions this instance refused (and why), until they change or are requested again. */
  refused: Record<string, string>;
  updatedAt: string;
}

export function instanceId(): string {
  return `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
}

/** Sets the desired version of a stage deployment and notifies its running instances. */
export async function setDesiredVersion(redis: Redis | Cluster, group: string, version: string, action = 'promote'): Promise<DesiredVersion> {
  const desired: DesiredVersion = { version, requestId: crypto.randomUUID(), at: new Date().toISOString(), by: `${os.userInfo().username}@${os.hostname()}`, action };
  const keys = controlKeys(group);
  await redis.set(keys.desired, JSON.stringify(desired));
  await redis.publish(keys.notify, desired.requestId);
  return desired;
}

export async function getDesiredVersion(redis: Redis | Cluster, group: string): Promise<DesiredVersion | undefined> {
  const raw = await redis.get(controlKeys(group).desired);
  return raw ? (JSON.parse(raw) as DesiredVersion) : undefined;
}

export async function writeStatus(redis: Redis | Cluster, group: string, status: ServingStatus): Promise<void> {
  await redis.hset(controlKeys(group).status, status.instance, JSON.stringify(status));
}

export async function removeStatus(redis: Redis | Cluster, group: string, instance: string): Promise<void> {
  await redis.hdel(controlKeys(group).status, instance);
}

export async function recordEvent(redis: Redis | Cluster, group: string, event: SwapEvent): Promise<void> {
  const key = controlKeys(group).events;
  await redis.multi().lpush(key, JSON.stringify(event)).ltrim(key, 0, MAX_EVENTS - 1).exec();
}

export interface ControlSnapshot {
  group: string;
  desired?: DesiredVersion;
  instances: ServingStatus[];
  events: SwapEvent[];
}

/** What `tributary models status` shows: desired version, each instance's live version and last swap, recent events. */
export async function readControl(redis: Redis | Cluster, group: string, events = 10): Promise<ControlSnapshot> {
  const keys = controlKeys(group);
  const [desired, statuses, list] = await Promise.all([redis.get(keys.desired), redis.hgetall(keys.status), redis.lrange(keys.events, 0, events - 1)]);
  return {
    group,
    desired: desired ? (JSON.parse(desired) as DesiredVersion) : undefined,
    instances: Object.values(statuses).map((s) => JSON.parse(s) as ServingStatus).sort((a, b) => a.instance.localeCompare(b.instance)),
    events: list.map((e) => JSON.parse(e) as SwapEvent),
  };
}

/** Text for people. */
export function formatControl(s: ControlSnapshot): string {
  const lines = [`group ${s.group}`];
  lines.push(`  desired: ${s.desired ? `${s.desired.version} (${s.desired.action} by ${s.desired.by} at ${s.desired.at})` : '(none: the topology\'s version)'}`);
  if (s.instances.length === 0) lines.push('  instances: none reporting');
  for (const i of s.instances) {
    lines.push(`  instance ${i.instance}: ${i.model}@${i.live} live${i.previous ? `, previous ${i.previous}` : ''} (policy ${i.policy}, updated ${i.updatedAt})`);
    if (i.lastSwap) lines.push(`    last swap: ${i.lastSwap.from} -> ${i.lastSwap.to} ${i.lastSwap.result.toUpperCase()}${i.lastSwap.reason ? `: ${i.lastSwap.reason}` : ''}`);
    for (const [v, why] of Object.entries(i.refused)) lines.push(`    refused ${v}: ${why}`);
  }
  if (s.events.length > 0) {
    lines.push('  recent swaps:');
    for (const e of s.events) lines.push(`    ${e.at} ${e.instance} ${e.model} ${e.from} -> ${e.to} ${e.result} (${e.trigger}, ${e.durationMs} ms)${e.reason ? `: ${e.reason}` : ''}`);
  }
  return lines.join('\n');
}
