/**
 * The requests scripts/patch-kafkajs.js adds to kafkajs for exactly-once v2 (KIP-447), byte by
 * byte against the layouts of Kafka's message definitions (TxnOffsetCommit v3, OffsetFetch v7; both
 * flexible: compact strings and arrays are length + 1 as an unsigned varint, every struct ends with
 * an empty tagged-field buffer, and the request header v2's tag buffer leads the body because
 * kafkajs writes header v1). The real-broker side is test/integration/eos-v2-protocol.test.ts.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
type Built = { apiKey: number; apiVersion: number; encode(): Promise<{ buffer: Buffer }> };
const txnOffsetCommitV3 = require('kafkajs/src/protocol/requests/txnOffsetCommit/v3/request') as (a: object) => Built;
const txnOffsetCommitV3Response = require('kafkajs/src/protocol/requests/txnOffsetCommit/v3/response') as { decode(b: Buffer): Promise<{ topics: { topic: string; partitions: { partition: number; errorCode: number }[] }[]; clientSideThrottleTime: number }>; parse(d: unknown): Promise<unknown> };
const offsetFetchV7 = require('kafkajs/src/protocol/requests/offsetFetch/v7/request') as (a: object) => Built;
const offsetFetchV7Response = require('kafkajs/src/protocol/requests/offsetFetch/v7/response') as { decode(b: Buffer): Promise<{ errorCode: number; responses: { topic: string; partitions: { partition: number; offset: string; metadata: string | null; errorCode: number }[] }[] }>; parse(d: unknown): Promise<unknown> };
import { groupMetadataOf, isGenerationError } from '../../src/kafka/eos-v2';

const compact = (s: string | null) => (s === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([Buffer.byteLength(s) + 1]), Buffer.from(s)]));
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const i64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(n); return b; };
const TAGS = Buffer.from([0]);

describe('kafkajs exactly-once v2 requests (patched)', () => {
  it('TxnOffsetCommit v3 carries the generation, member id and a null instance id in the flexible layout', async () => {
    const req = txnOffsetCommitV3({ transactionalId: 'g.i.0', groupId: 'g', producerId: 7, producerEpoch: 3, generationId: 12, memberId: 'm-1', groupInstanceId: null, topics: [{ topic: 't', partitions: [{ partition: 2, offset: '41' }] }] });
    expect([req.apiKey, req.apiVersion]).toEqual([28, 3]);
    const expected = Buffer.concat([
      TAGS, // request header v2 tagged fields
      compact('g.i.0'), compact('g'), i64(7n), i16(3), i32(12), compact('m-1'), compact(null),
      Buffer.from([2]), // one topic
      compact('t'), Buffer.from([2]), i32(2), i64(41n), i32(-1), compact(null), TAGS, TAGS,
      TAGS,
    ]);
    expect((await req.encode()).buffer.toString('hex')).toBe(expected.toString('hex'));
  });

  it('TxnOffsetCommit v3 response: per-partition errors decode, and a stale generation is thrown as ILLEGAL_GENERATION', async () => {
    const raw = (code: number) => Buffer.concat([TAGS, i32(5), Buffer.from([2]), compact('t'), Buffer.from([3]), i32(0), i16(0), TAGS, i32(1), i16(code), TAGS, TAGS, TAGS]);
    const ok = await txnOffsetCommitV3Response.decode(raw(0));
    expect(ok.topics).toEqual([{ topic: 't', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 0 }] }]);
    expect(ok.clientSideThrottleTime).toBe(5);
    await expect(txnOffsetCommitV3Response.parse(ok)).resolves.toBe(ok);
    const stale = await txnOffsetCommitV3Response.decode(raw(22));
    const err = await txnOffsetCommitV3Response.parse(stale).catch((e: unknown) => e);
    expect((err as { type: string }).type).toBe('ILLEGAL_GENERATION');
    expect(isGenerationError(err)).toBe(true);
    expect(isGenerationError(await txnOffsetCommitV3Response.parse(await txnOffsetCommitV3Response.decode(raw(25))).catch((e: unknown) => e))).toBe(true); // UNKNOWN_MEMBER_ID
  });

  it('OffsetFetch v7 asks for stable offsets of the given partitions', async () => {
    const req = offsetFetchV7({ groupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0 }, { partition: 5 }] }], requireStable: true });
    expect([req.apiKey, req.apiVersion]).toEqual([9, 7]);
    const expected = Buffer.concat([TAGS, compact('g'), Buffer.from([2]), compact('t'), Buffer.from([3]), i32(0), i32(5), TAGS, Buffer.from([1]), TAGS]);
    expect((await req.encode()).buffer.toString('hex')).toBe(expected.toString('hex'));
  });

  it('OffsetFetch v7 response: an unstable partition keeps its error code, other partition errors are thrown', async () => {
    const partition = (p: number, offset: bigint, code: number) => Buffer.concat([i32(p), i64(offset), i32(-1), compact(null), i16(code), TAGS]);
    const raw = (code1: number) => Buffer.concat([TAGS, i32(0), Buffer.from([2]), compact('t'), Buffer.from([3]), partition(0, 17n, 0), partition(1, -1n, code1), TAGS, i16(0), TAGS]);
    const decoded = await offsetFetchV7Response.decode(raw(88));
    expect(decoded.responses[0].partitions.map((p) => [p.partition, p.offset, p.errorCode])).toEqual([[0, '17', 0], [1, '-1', 88]]);
    await expect(offsetFetchV7Response.parse(decoded)).resolves.toBe(decoded);
    const err = await offsetFetchV7Response.parse(await offsetFetchV7Response.decode(raw(16))).catch((e: unknown) => e);
    expect((err as { type: string }).type).toBe('NOT_COORDINATOR_FOR_GROUP');
  });

  it('the GROUP_JOIN payload carries the generation (patched consumer group)', () => {
    expect(groupMetadataOf({ memberId: 'm', generationId: 4 })).toEqual({ generationId: 4, memberId: 'm', groupInstanceId: null });
    expect(groupMetadataOf({ memberId: 'm' })).toBeUndefined();
    const source = require('node:fs').readFileSync(require.resolve('kafkajs/src/consumer/consumerGroup.js'), 'utf8') as string;
    expect(source).toContain('generationId: this.generationId, // patched by tributary');
  });
});
