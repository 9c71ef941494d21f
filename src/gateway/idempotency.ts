import type { Cluster, Redis } from 'ioredis';
import type { GatewayEvent } from './events';

/**
 * Idempotency keys in Redis (shared by every gateway instance), one hash per key with a TTL:
 *
 *   claimed  → the instance `owner` took the key; it will produce the event with correlation id `cid`
 *              and read the replies on `replyPartition`, which had reached `replyFrom` at claim time
 *   produced → the event is in the input topic at `inputPartition`/`inputOffset`
 *   done     → `events` holds the outcome (the prediction or the dead letter) for every retry
 *
 * The claim is one atomic script, so of concurrent duplicates (on any instances) exactly one
 * produces. A retry finding the key follows it: done → the stored answer; owner alive → wait for
 * done; owner gone (its partition lease expired) → take ownership and read the reply partition
 * from `replyFrom` (replies stay in the topic for an hour, so this also serves retries long after).
 */
export type IdempotencyState = 'claimed' | 'produced' | 'done';

export interface IdempotencyRecord {
  cid: string;
  owner: string;
  fingerprint: string;
  replyPartition: number;
  replyFrom: string;
  state: IdempotencyState;
  inputPartition?: number;
  inputOffset?: string;
  events?: GatewayEvent[];
}

const CLAIM = `
if redis.call('exists', KEYS[1]) == 1 then return redis.call('hgetall', KEYS[1]) end
redis.call('hset', KEYS[1], 'cid', ARGV[1], 'owner', ARGV[2], 'fingerprint', ARGV[3], 'replyPartition', ARGV[4], 'replyFrom', ARGV[5], 'state', 'claimed')
redis.call('pexpire', KEYS[1], ARGV[6])
return false`;

const TAKE_OVER = `if redis.call('hget', KEYS[1], 'owner') == ARGV[1] then redis.call('hset', KEYS[1], 'owner', ARGV[2]) return 1 end return 0`;

/** Writes only while the key exists (an expired key is not resurrected without its TTL). */
const UPDATE = `if redis.call('exists', KEYS[1]) == 0 then return 0 end redis.call('hset', KEYS[1], unpack(ARGV)) return 1`;

function parse(fields: Record<string, string>): IdempotencyRecord {
  return {
    cid: fields.cid,
    owner: fields.owner,
    fingerprint: fields.fingerprint,
    replyPartition: Number(fields.replyPartition),
    replyFrom: fields.replyFrom,
    state: fields.state as IdempotencyState,
    inputPartition: fields.inputPartition !== undefined ? Number(fields.inputPartition) : undefined,
    inputOffset: fields.inputOffset,
    events: fields.events ? (JSON.parse(fields.events) as GatewayEvent[]) : undefined,
  };
}

function pairsToObject(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1];
  return out;
}

export class IdempotencyStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    readonly ttlMs: number,
  ) {}

  private key(idempotencyKey: string): string {
    return `${this.prefix}:idem:${idempotencyKey}`;
  }

  /** Claims the key for `record` (null: claimed now) or returns the record already there. */
  async claim(idempotencyKey: string, record: Pick<IdempotencyRecord, 'cid' | 'owner' | 'fingerprint' | 'replyPartition' | 'replyFrom'>): Promise<IdempotencyRecord | null> {
    const res = (await this.redis.eval(CLAIM, 1, this.key(idempotencyKey), record.cid, record.owner, record.fingerprint, String(record.replyPartition), record.replyFrom, String(this.ttlMs))) as string[] | null;
    return res ? parse(pairsToObject(res)) : null;
  }

  async get(idempotencyKey: string): Promise<IdempotencyRecord | null> {
    const fields = await this.redis.hgetall(this.key(idempotencyKey));
    return Object.keys(fields).length > 0 ? parse(fields) : null;
  }

  async produced(idempotencyKey: string, partition: number, offset: string): Promise<void> {
    await this.redis.eval(UPDATE, 1, this.key(idempotencyKey), 'state', 'produced', 'inputPartition', String(partition), 'inputOffset', offset);
  }

  async done(idempotencyKey: string, events: GatewayEvent[]): Promise<void> {
    await this.redis.eval(UPDATE, 1, this.key(idempotencyKey), 'state', 'done', 'events', JSON.stringify(events));
  }

  /** Moves ownership from `from` (gone) to `to`; false if someone else already did. */
  async takeOver(idempotencyKey: string, from: string, to: string): Promise<boolean> {
    return (await this.redis.eval(TAKE_OVER, 1, this.key(idempotencyKey), from, to)) === 1;
  }

  /** Forgets a key whose event was never produced (the producer failed): a retry may produce it. */
  async release(idempotencyKey: string, cid: string): Promise<void> {
    await this.redis.eval(`if redis.call('hget', KEYS[1], 'cid') == ARGV[1] and redis.call('hget', KEYS[1], 'state') == 'claimed' then return redis.call('del', KEYS[1]) end return 0`, 1, this.key(idempotencyKey), cid);
  }
}
