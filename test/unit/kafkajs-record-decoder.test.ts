/**
 * kafkajs' fetched-record decoder as patched by scripts/patch-kafkajs.js (patches 12 and 13, npm ci
 * runs it): timestamps and offsets summed in Number arithmetic, headers folded into one object, the
 * records before a fetch's offset found as a prefix. Each
 * record is encoded with kafkajs' own record encoder and decoded by the patched decoder and by
 * kafkajs' original one (kept as `unpatched`, also the fallback): the results must be equal, for
 * edge and random deltas, batch bases beyond 2^53, repeated headers and log-append time — and the
 * fallback must be taken exactly where Number arithmetic would not be exact.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export {};
type Enc = { buffer: Buffer };
type Dec = { offset: number; buffer: Buffer; readVarIntBytes(): Buffer };
type Ctx = Record<string, unknown>;
type RecordInput = { offsetDelta?: number; timestampDelta?: number | string; key?: Buffer | null; value?: Buffer | null; headers?: Record<string, Buffer | Buffer[]> };
type RecordDecoder = ((d: Dec, ctx: Ctx) => Record<string, unknown>) & { unpatched: (d: Dec, ctx: Ctx) => Record<string, unknown> };
const RecordEncoder = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => Enc;
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => Dec;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as RecordDecoder;
const fastDecoderOf = require('kafkajs/src/protocol/recordBatch/record/v0/decoderFast') as (fallback: RecordDecoder['unpatched']) => RecordDecoder['unpatched'];
const Batch = require('kafkajs/src/consumer/batch') as new (topic: string, fetchedOffset: string, data: object) => { messagesWithinOffset: Array<{ offset: string }>; messages: Array<{ offset: string }> };
const TimestampTypes = require('kafkajs/src/protocol/timestampTypes') as { CREATE_TIME: number; LOG_APPEND_TIME: number };

/** The record's own bytes (what the batch decoder hands the record decoder), from kafkajs' encoder. */
function recordBytes(r: RecordInput): Buffer {
  return new Decoder(RecordEncoder(r).buffer).readVarIntBytes();
}

function ctx(firstOffset: string, firstTimestamp: string, extra: Ctx = {}): Ctx {
  return { firstOffset, firstTimestamp, magicByte: 2, isControlBatch: false, timestampType: TimestampTypes.CREATE_TIME, maxTimestamp: '0', inTransaction: true, ...extra };
}

/** Decodes with both decoders (each from its own Decoder) and checks that each read the whole record. */
function both(bytes: Buffer, context: Ctx, decode: RecordDecoder['unpatched'] = decodeRecord) {
  const a = new Decoder(bytes);
  const b = new Decoder(bytes);
  const patched = decode(a, context);
  const original = decodeRecord.unpatched(b, { ...context });
  expect(a.offset).toBe(bytes.length);
  expect(b.offset).toBe(bytes.length);
  return { patched, original };
}

const h = (s: string) => Buffer.from(s);

describe('kafkajs record decoder (patched)', () => {
  it('decodes like kafkajs for edge and random timestamp and offset deltas', () => {
    const deltas = [0, 1, -1, 63, -64, 64, 8191, -8192, 2 ** 20, -(2 ** 20), 2 ** 31 - 1, -(2 ** 31), 2 ** 40, -(2 ** 40), 2 ** 47, -(2 ** 47)];
    const random = Array.from({ length: 500 }, (_, i) => Math.round((Math.random() - 0.5) * 2 ** (1 + (i % 47))));
    const bases: Array<[string, string]> = [['0', '1796204579995'], ['123456789', '-1'], ['4503599627370000', '0'], ['42', '1700000000000']];
    for (const [firstOffset, firstTimestamp] of bases) {
      for (const timestampDelta of [...deltas, ...random]) {
        const offsetDelta = Math.abs(timestampDelta) % 2 ** 31;
        const { patched, original } = both(recordBytes({ offsetDelta, timestampDelta, key: h('k'), value: h('v') }), ctx(firstOffset, firstTimestamp));
        expect(patched).toEqual(original);
        expect(patched.timestamp).toBe((BigInt(firstTimestamp) + BigInt(timestampDelta)).toString());
        expect(patched.offset).toBe((BigInt(firstOffset) + BigInt(offsetDelta)).toString());
      }
    }
  });

  it('keys, values, null key and value, and headers (repeated ones as arrays, in order) are the same', () => {
    const cases: RecordInput[] = [
      { key: null, value: null },
      { key: h(''), value: h('') },
      { key: h('card-1'), value: Buffer.alloc(3000, 7), headers: { 'tributary-lineage': h('t/0/5'), traceparent: h('00-ab-cd-01') } },
      { key: h('k'), value: h('v'), headers: { dup: [h('a'), h('b')], one: h('x'), 'ключ': h('значение') } },
      { key: h('k'), value: h('v'), headers: { tri: [h('1'), h('2'), h('3')] } },
    ];
    for (const r of cases) {
      const { patched, original } = both(recordBytes({ offsetDelta: 3, timestampDelta: 5, ...r }), ctx('100', '1796204579995'));
      expect(patched).toEqual(original);
    }
    const { patched } = both(recordBytes({ headers: { dup: [h('a'), h('b')], tri: [h('1'), h('2'), h('3')] } }), ctx('0', '0'));
    expect((patched.headers as Record<string, Buffer[]>).dup.map(String)).toEqual(['a', 'b']);
    expect((patched.headers as Record<string, Buffer[]>).tri.map(String)).toEqual(['1', '2', '3']);
  });

  it('log-append time takes the batch maximum, as kafkajs does', () => {
    const context = ctx('7', '1796204579995', { timestampType: TimestampTypes.LOG_APPEND_TIME, maxTimestamp: '1796204580123' });
    const { patched, original } = both(recordBytes({ offsetDelta: 1, timestampDelta: 9 }), context);
    expect(patched).toEqual(original);
    expect(patched.timestamp).toBe('1796204580123');
  });

  it('falls back to kafkajs exactly where Number arithmetic would not be exact, with the same results', () => {
    const fallback = jest.fn(decodeRecord.unpatched);
    const decode = fastDecoderOf(fallback);
    const run = (bytes: Buffer, context: Ctx) => {
      fallback.mockClear();
      const { patched, original } = both(bytes, context, decode);
      expect(patched).toEqual(original);
      return fallback.mock.calls.length;
    };
    // Safe: no fallback.
    expect(run(recordBytes({ offsetDelta: 2, timestampDelta: 2 ** 47 }), ctx('5', '1796204579995'))).toBe(0);
    // An 8-byte varlong (|delta| >= 2^48).
    expect(run(recordBytes({ offsetDelta: 2, timestampDelta: 2 ** 50 }), ctx('5', '1796204579995'))).toBe(1);
    // Bases beyond 2^53 (the batch's first offset, its first timestamp).
    expect(run(recordBytes({ offsetDelta: 2, timestampDelta: 1 }), ctx('9007199254740993', '1796204579995'))).toBe(1);
    expect(run(recordBytes({ offsetDelta: 2, timestampDelta: 1 }), ctx('5', '9223372036854775807'))).toBe(1);
    // A sum that leaves the safe range.
    expect(run(recordBytes({ offsetDelta: 2, timestampDelta: 2 ** 40 }), ctx('5', String(Number.MAX_SAFE_INTEGER - 2 ** 39)))).toBe(1);
  });

  it('a header named like an Object.prototype member keeps its own value (kafkajs made an array with the inherited member)', () => {
    const { patched } = both(recordBytes({ headers: { constructor: h('c'), toString: h('t') } }), ctx('0', '0'));
    const headers = patched.headers as Record<string, unknown>;
    expect(Object.keys(headers)).toEqual(['constructor', 'toString']);
    expect(String(headers.constructor)).toBe('c');
    expect(String(headers.toString)).toBe('t');
  });

  it('a fetch keeps the records from the fetched offset on (patch 13: the earlier ones are a prefix)', () => {
    const msg = (offset: number, control = false) => ({ offset: String(offset), key: null, value: null, headers: {}, isControlRecord: control, batchContext: { producerId: '1', inTransaction: false } });
    for (let trial = 0; trial < 200; trial++) {
      const start = 2 ** 40 + Math.floor(Math.random() * 1000);
      const n = Math.floor(Math.random() * 20);
      const messages = Array.from({ length: n }, (_, i) => msg(start + i, Math.random() < 0.1));
      const fetched = start + Math.floor(Math.random() * (n + 2)) - 1;
      const batch = new Batch('t', String(fetched), { partition: 0, highWatermark: String(start + n), messages, abortedTransactions: [] });
      const expected = messages.filter((m) => BigInt(m.offset) >= BigInt(fetched));
      expect(batch.messagesWithinOffset).toEqual(expected);
      expect(batch.messages).toEqual(expected.filter((m) => !m.isControlRecord));
    }
  });
});
