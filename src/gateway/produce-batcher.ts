import type { Message, RecordMetadata } from 'kafkajs';

/** Where one produced record landed. */
export interface Landed {
  partition: number;
  offset: string;
}

type Send = (messages: Message[]) => Promise<RecordMetadata[]>;

/**
 * Produces requests' records in batches without adding a linger: a record is sent at once when
 * no send is in flight; records arriving during a send go out together in the next one. An
 * idempotent producer has one request in flight per broker, so one send per HTTP request would cap
 * the gateway at 1 / (produce round trip) requests per second and queue the rest.
 *
 * Every message names its partition (the caller picks it), so a record's offset is the batch's base
 * offset for that partition plus its position among the batch's records for that partition.
 */
export class ProduceBatcher {
  private queue: { message: Message & { partition: number }; resolve: (l: Landed) => void; reject: (e: Error) => void }[] = [];
  private sending = false;

  constructor(private readonly send: Send) {}

  produce(message: Message & { partition: number }): Promise<Landed> {
    return new Promise((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (!this.sending) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const meta = await this.send(batch.map((b) => b.message));
        const base = new Map(meta.map((m) => [m.partition, BigInt(m.baseOffset ?? m.offset ?? '0')]));
        const seen = new Map<number, bigint>();
        for (const b of batch) {
          const p = b.message.partition;
          const i = seen.get(p) ?? 0n;
          seen.set(p, i + 1n);
          const first = base.get(p);
          if (first === undefined) b.reject(new Error(`no produce result for partition ${p}`));
          else b.resolve({ partition: p, offset: (first + i).toString() });
        }
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.sending = false;
  }
}
