/**
 * kafkajs' Produce request as patched by scripts/patch-kafkajs.js (14): encoded into one buffer
 * sized once, the request frame written into room reserved in front. The bytes must be exactly
 * those of kafkajs' own nested encoders (the request's `encode({ nested: true })` framed the way
 * protocol/request.js frames it) over random requests — several topics and partitions, keys and
 * values as Buffers, strings or null, headers with arrays and multi-byte text, timestamps of
 * different lengths (kafkajs picks the first and largest by string order), messages without one,
 * a record over 64 KiB, transactional or not — and the frame must decode back to the messages.
 * The patch's point, one allocation per request, is asserted by counting them. Both encodings
 * write each record with Record v0's (patched) functions, whose bytes test/unit/kafkajs-encoder.test.ts
 * checks against kafkajs' original record encoding.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export {}; // a module: its names do not meet kafkajs-encoder.test.ts's

type Enc = { buf: Buffer; offset: number; buffer: Buffer; writeInt16(v: number): Enc; writeInt32(v: number): Enc; writeString(v: string | null): Enc; writeEncoder(e: Enc): Enc; size(): number };
type Message = { key?: Buffer | string | null; value: Buffer | string | null; headers?: Record<string, Buffer | string | (Buffer | string)[]>; timestamp?: string };
type TopicData = { topic: string; partitions: { partition: number; firstSequence?: number; messages: Message[] }[] }[];
type ProduceRequest = { apiKey: number; apiVersion: number; encode(frame?: { headroom?: number; nested?: boolean }): Promise<Enc> };

const Encoder = require('kafkajs/src/protocol/encoder') as new (size?: number) => Enc;
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => {
  readInt16(): number;
  readInt32(): number;
  readString(): string | null;
  readBytes(n: number): Buffer;
  offset: number;
};
const Long = require('kafkajs/src/utils/long') as { fromValue(v: unknown): unknown; fromInt(v: number): unknown };
const produceV7 = require('kafkajs/src/protocol/requests/produce/v7/request') as (a: object) => ProduceRequest;
const createRequest = require('kafkajs/src/protocol/request') as (a: { correlationId: number; clientId: string | null; request: ProduceRequest }) => Promise<Enc>;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: unknown) => Promise<{ records: { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | Buffer[]>; timestamp: string }[] }>;
const { Types } = require('kafkajs/src/protocol/message/compression') as { Types: { None: number; GZIP: number } };

/** protocol/request.js as kafkajs wrote it: header + payload, then the size in front (two copies). */
function frameAsKafkajs(payload: Enc, apiKey: number, apiVersion: number, correlationId: number, clientId: string | null): Buffer {
  const request = new Encoder().writeInt16(apiKey).writeInt16(apiVersion).writeInt32(correlationId).writeString(clientId).writeEncoder(payload);
  return new Encoder().writeInt32(request.size()).writeEncoder(request).buffer;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomRequest(rnd: () => number, bigRecord: boolean): { args: object; clientId: string | null } {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const text = (n: number) => Array.from({ length: n }, () => pick(['a', 'z', '7', '-', 'é', '€', '𝔘'])).join('');
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  const payload = (): Buffer | string | null => pick([() => bytes(Math.floor(rnd() * 400)), () => text(Math.floor(rnd() * 40)), () => null, () => Buffer.alloc(0)])();
  const topicData: TopicData = [];
  for (let t = 0, topics = 1 + Math.floor(rnd() * 3); t < topics; t++) {
    const partitions: TopicData[number]['partitions'] = [];
    for (let p = 0, n = 1 + Math.floor(rnd() * 3); p < n; p++) {
      const messages: Message[] = [];
      for (let m = 0, count = 1 + Math.floor(rnd() * 40); m < count; m++) {
        const message: Message = { key: pick([() => bytes(8), () => `card-${m}`, () => null, () => undefined])(), value: payload() };
        // Timestamps of different digit counts: string order is not numeric order (kafkajs sorts strings).
        if (rnd() < 0.85) message.timestamp = String(pick([1_733_000_000_000, 999_999_999_999, 5, 98_765]) + Math.floor(rnd() * 100_000));
        if (rnd() < 0.7) {
          const headers: NonNullable<Message['headers']> = {};
          for (let h = 0, hs = Math.floor(rnd() * 4); h < hs; h++) headers[pick(['lineage', 'traceparent', 'reply-to', text(5)])] = pick([() => bytes(16), () => text(12), () => [bytes(3), text(4)], () => []])();
          message.headers = headers;
        }
        messages.push(message);
      }
      partitions.push({ partition: p * 7 + t, firstSequence: rnd() < 0.5 ? Math.floor(rnd() * 1e6) : undefined, messages });
    }
    topicData.push({ topic: text(1 + Math.floor(rnd() * 20)), partitions });
  }
  if (bigRecord) topicData[0].partitions[0].messages.push({ key: 'big', value: bytes(70_000), timestamp: '1733000000000' });
  const transactional = rnd() < 0.5;
  return {
    args: {
      acks: pick([-1, 1]),
      timeout: 30000,
      transactionalId: transactional ? text(1 + Math.floor(rnd() * 30)) : null,
      producerId: transactional ? Long.fromValue(String(Math.floor(rnd() * 1e12))) : undefined,
      producerEpoch: transactional ? Math.floor(rnd() * 30) : undefined,
      compression: Types.None,
      topicData,
    },
    clientId: pick(['tributary', null, 'client-é€', '']),
  };
}

describe('kafkajs produce request in one buffer (patched)', () => {
  beforeEach(() => jest.spyOn(Date, 'now').mockReturnValue(1_733_000_123_456));
  afterEach(() => jest.restoreAllMocks());

  it('has the bytes of kafkajs nested encoders, frame included, over 300 random requests', async () => {
    const rnd = mulberry32(20261204);
    for (let i = 0; i < 300; i++) {
      const { args, clientId } = randomRequest(rnd, i % 50 === 0);
      const request = produceV7(args);
      const framed = await createRequest({ correlationId: i, clientId, request });
      const expected = frameAsKafkajs(await request.encode({ nested: true }), request.apiKey, request.apiVersion, i, clientId);
      expect(framed.buffer.equals(expected)).toBe(true);
      // sized once: the frame and the 4 bytes a last varint's write asks for (a grown one doubles)
      expect(framed.buf.length).toBe(framed.offset + 4);
      // the payload alone, without a frame's room, is kafkajs' payload too
      expect((await request.encode()).buffer.equals((await request.encode({ nested: true })).buffer)).toBe(true);
    }
  });

  it('decodes back to the messages it was given', async () => {
    const messages: Message[] = [
      { key: 'card-1', value: Buffer.from([1, 2, 3]), headers: { lineage: 'abc', multi: ['x', Buffer.from('y')] }, timestamp: '1733000000100' },
      { key: null, value: 'text €', timestamp: '1733000000050' },
      { value: null },
    ];
    const request = produceV7({ acks: -1, timeout: 30000, transactionalId: 'tx-1', producerId: Long.fromInt(42), producerEpoch: 3, compression: Types.None, topicData: [{ topic: 'predictions', partitions: [{ partition: 2, firstSequence: 9, messages }] }] });
    const frame = (await createRequest({ correlationId: 77, clientId: 'c', request })).buffer;
    const d = new Decoder(frame);
    expect([d.readInt32(), d.readInt16(), d.readInt16(), d.readInt32(), d.readString()]).toEqual([frame.length - 4, request.apiKey, 7, 77, 'c']);
    expect([d.readString(), d.readInt16(), d.readInt32(), d.readInt32(), d.readString(), d.readInt32(), d.readInt32()]).toEqual(['tx-1', -1, 30000, 1, 'predictions', 1, 2]);
    const size = d.readInt32();
    expect(d.offset + size).toBe(frame.length);
    const { records } = await decodeBatch(new Decoder(d.readBytes(size)));
    expect(records.map((r) => [r.key?.toString() ?? null, r.value?.toString('hex') ?? null])).toEqual([
      ['card-1', '010203'],
      [null, Buffer.from('text €').toString('hex')],
      [null, null],
    ]);
    expect(records[0].headers.lineage.toString()).toBe('abc');
    expect((records[0].headers.multi as Buffer[]).map(String)).toEqual(['x', 'y']);
    // kafkajs' first timestamp is the smallest (string order); the one without a timestamp is now
    expect(records.map((r) => r.timestamp)).toEqual(['1733000000100', '1733000000050', '1733000123456']);
  });

  it('allocates one buffer per request (kafkajs: about eight per partition, plus one per record)', async () => {
    const { args } = randomRequest(mulberry32(7), false);
    const request = produceV7(args);
    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    await createRequest({ correlationId: 1, clientId: 'tributary', request });
    expect(allocUnsafe).toHaveBeenCalledTimes(1);
    allocUnsafe.mockClear();
    await request.encode({ nested: true });
    expect(allocUnsafe.mock.calls.length).toBeGreaterThan(8);
  });

  it('leaves compressed requests to kafkajs nested encoders', async () => {
    const request = produceV7({ acks: -1, timeout: 1000, compression: Types.GZIP, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v', timestamp: '1' }] }] }] });
    const payload = await request.encode({ headroom: 20 });
    expect((payload as unknown as { frameHeadroom?: number }).frameHeadroom).toBeUndefined();
    const framed = await createRequest({ correlationId: 3, clientId: 'x', request });
    expect(framed.buffer.readInt32BE(0)).toBe(framed.buffer.length - 4);
  });
});
