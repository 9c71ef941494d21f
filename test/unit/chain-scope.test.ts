import type { KafkaMessage } from 'kafkajs';
import { Chain, type ChainStage } from '../../src/engine/chain';
import type { BatchScope, Processor } from '../../src/stages/processor';
import { RerunBatchError, TransientError } from '../../src/util/errors';
import { createLogger } from '../../src/util/logger';

/**
 * Work a processor defers to its chunk's commit (BatchScope.beforeCommit, src/engine/chain.ts):
 * the stages after it run meanwhile, the chain returns only once it landed, never leaves it in
 * flight behind a failure, and a RerunBatchError runs the chunk again at once without a scope.
 */
describe('chain: work deferred to the chunk commit', () => {
  const decoder = { decode: async (v: Buffer | null) => ({ n: Number(String(v)) }) } as never;
  const message = (n: number, offset: number): KafkaMessage => ({ key: Buffer.from(`k${n}`), value: Buffer.from(String(n)), timestamp: String(1000 + offset), offset: String(offset), headers: {} }) as unknown as KafkaMessage;
  const spec = (name: string) => ({ name, processor: 'p', input: { topic: `${name}-in` }, output: { topic: `${name}-out` }, config: {} });

  /** A promise and its settlers. */
  function gate<T = void>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    return { promise, resolve, reject };
  }

  /** A state-like stage: adds 1, and hands `deferred()` (when it gives one) to the scope, or awaits it without one. */
  function writer(log: string[], deferred: (run: number) => Promise<void> | undefined): ChainStage & { scopes: Array<BatchScope | undefined> } {
    const scopes: Array<BatchScope | undefined> = [];
    let run = 0;
    const processor: Processor = {
      processBatch: async (rs, scope) => {
        scopes.push(scope);
        const work = deferred(++run);
        if (work) {
          if (scope) scope.beforeCommit(work.then(() => void log.push(`write ${run} landed`)));
          else await work;
        }
        log.push(`write ${run} returned`);
        return rs.map((r) => ({ key: 'k', value: { n: (r.value as { n: number }).n + 1 } }));
      },
      close: async () => {},
    };
    return { spec: spec('write'), processor, scopes };
  }

  /** The stage after it: multiplies by 10, or throws `fail` when given. */
  function after(log: string[], fail?: () => Error): ChainStage {
    const processor: Processor = {
      processBatch: async (rs) => {
        log.push('next stage ran');
        if (fail) throw fail();
        return rs.map((r) => ({ key: 'k', value: { n: (r.value as { n: number }).n * 10 } }));
      },
      close: async () => {},
    };
    return { spec: spec('score'), processor };
  }

  const chainOf = (stages: ChainStage[]) => new Chain({ stages, decoder, deadLetterMaxValueBytes: 100, keepValues: true, log: createLogger('test') });

  it('runs the next stage while the write is in flight and returns only once it landed', async () => {
    const log: string[] = [];
    const w = gate();
    const chain = chainOf([writer(log, () => w.promise), after(log)]);
    let done = false;
    const processing = chain.process('write-in', 0, [message(1, 0), message(2, 1)]).then((r) => ((done = true), r));
    // The next stage ran with the write still pending; the chunk is not done.
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(['write 1 returned', 'next stage ran']);
    expect(done).toBe(false);
    w.resolve();
    const records = await processing;
    expect(log).toEqual(['write 1 returned', 'next stage ran', 'write 1 landed']);
    expect(records.map((r) => r.values)).toEqual([[{ n: 2 }, { n: 20 }], [{ n: 3 }, { n: 30 }]]);
    expect(chain.reruns).toBe(0);
  });

  it('a later stage failing: the chain waits for the write before it rethrows', async () => {
    const log: string[] = [];
    const w = gate();
    const chain = chainOf([writer(log, () => w.promise), after(log, () => new TransientError('model pool down'))]);
    let settled = false;
    const processing = chain.process('write-in', 0, [message(1, 0)]).finally(() => (settled = true));
    processing.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(['write 1 returned', 'next stage ran']);
    expect(settled).toBe(false); // the failure waits for the write still in flight
    w.resolve();
    await expect(processing).rejects.toThrow('model pool down');
    expect(log).toEqual(['write 1 returned', 'next stage ran', 'write 1 landed']);
  });

  it('a write refused with RerunBatchError runs the chunk again at once, without a scope, and its results are the rerun\'s', async () => {
    const log: string[] = [];
    const w = writer(log, (run) => (run === 1 ? Promise.reject(new RerunBatchError('entity changed under the batch')) : Promise.resolve()));
    const chain = chainOf([w, after(log)]);
    const records = await chain.process('write-in', 0, [message(4, 0)]);
    expect(chain.reruns).toBe(1);
    // First run with a scope, the rerun without one (its write awaited in place).
    expect(w.scopes.map((s) => s !== undefined)).toEqual([true, false]);
    expect(log).toEqual(['write 1 returned', 'next stage ran', 'write 2 returned', 'next stage ran']);
    expect(records.map((r) => r.values)).toEqual([[{ n: 5 }, { n: 50 }]]);
  });

  it('any other failure of the write fails the chunk (the lane retries it), after every write settled', async () => {
    const log: string[] = [];
    const late = gate();
    let run = 0;
    const processor: Processor = {
      processBatch: async (rs, scope) => {
        run++;
        // Two writes: the first fails at once, the second is still in flight then.
        scope!.beforeCommit(Promise.reject(new TransientError('redis down')));
        scope!.beforeCommit(late.promise.then(() => void log.push('second write settled')));
        return rs.map(() => ({ key: 'k', value: { n: 0 } }));
      },
      close: async () => {},
    };
    const chain = chainOf([{ spec: spec('write'), processor }]);
    let settled = false;
    const processing = chain.process('write-in', 0, [message(1, 0)]).finally(() => (settled = true));
    processing.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    late.resolve();
    await expect(processing).rejects.toThrow('redis down');
    expect(log).toEqual(['second write settled']);
    expect(run).toBe(1); // not rerun: only RerunBatchError reruns
    expect(chain.reruns).toBe(0);
  });
});
