import type { Admin, Kafka } from 'kafkajs';
import type { TopologyView } from './events';

/** Where a request stood when its deadline passed. */
export interface StageReached {
  /** The stage the event was waiting for (or `gateway` when it never reached Kafka). */
  stage: string;
  detail: string;
}

/**
 * "Which stage it had reached": under exactly-once, a stage's outputs (and their reply copies)
 * become visible only when its transaction commits, so an event with no reply yet is located by
 * comparing its input offset with the committed offset of the group of each stage that reads the
 * input topic (`<topology>.<stage>`; the fused chain runs under its first stage's group). Replies
 * already seen say which stages are done.
 */
export class ProgressProbe {
  private admin?: Promise<Admin>;

  constructor(
    private readonly kafka: Kafka,
    private readonly view: TopologyView,
    private readonly groupPrefix: string,
  ) {}

  private connected(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })();
    this.admin.catch(() => (this.admin = undefined));
    return this.admin;
  }

  async reached(input: { partition: number; offset: string } | undefined, seenStages: string[]): Promise<StageReached> {
    if (!input) return { stage: 'gateway', detail: 'the event was not acknowledged by Kafka before the deadline' };
    const live = this.view.order.filter((s) => this.view.roles.get(s.name) !== 'shadow');
    const pending = live.filter((s) => this.view.roles.get(s.name) !== 'hop' && !seenStages.includes(s.name));
    if (seenStages.length > 0) {
      const next = pending[0]?.name ?? this.view.predictionStage;
      return { stage: next, detail: `stages ${seenStages.join(', ')} answered; waiting for ${next}` };
    }
    const head = live.find((s) => s.input.topic === this.view.inputTopic)!;
    const groupId = `${this.groupPrefix}.${head.name}`;
    // A repartition hop is named by the stage it feeds (the hop is the engine's, not the user's).
    const shown = this.view.hopOf.get(head.name);
    const via = shown ? ` (its repartition hop ${head.name})` : '';
    try {
      const admin = await this.connected();
      const [res] = await admin.fetchOffsets({ groupId, topics: [this.view.inputTopic] });
      const committed = BigInt(res?.partitions.find((p) => p.partition === input.partition)?.offset ?? '-1');
      const offset = BigInt(input.offset);
      if (committed <= offset) {
        const behind = committed < 0n ? 'has committed nothing on this partition' : `has committed up to offset ${committed} (${offset - committed} records ahead of it)`;
        const stage = shown ?? head.name;
        return { stage, detail: `queued for stage ${stage}${via}: group ${groupId} ${behind}; the event is at ${this.view.inputTopic}[${input.partition}]@${offset}` };
      }
      const after = shown ?? pending.find((s) => s !== head)?.name ?? head.name;
      return { stage: after, detail: shown ? `past the repartition hop ${head.name} (group ${groupId} committed offset ${committed} > ${offset}); waiting for stage ${after}` : `group ${groupId} committed past the event (offset ${committed} > ${offset}); its reply was not read yet` };
    } catch (err) {
      return { stage: shown ?? head.name, detail: `waiting for stage ${shown ?? head.name} (committed offsets unavailable: ${(err as Error).message})` };
    }
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = undefined;
    if (a) await a.then((x) => x.disconnect()).catch(() => undefined);
  }
}
