/**
 * kafkajs' protocol Encoder as patched by scripts/patch-kafkajs.js (npm ci runs it): encoders take
 * unfilled buffers from Node's pool and write varints in place, and small varlongs skip the Long
 * arithmetic. The bytes must be exactly the protocol's: checked here against a BigInt zigzag/LEB128
 * reference over edge and random values, and on a whole record (the produce path); the patch's
 * point — no zero-filled allocation and no Buffer per varint — is asserted by counting allocations.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
type Enc = { writeVarInt(v: number): Enc; writeUVarInt(v: number): Enc; writeVarLong(v: unknown): Enc; writeVarIntBytes(v: Buffer | null): Enc; buffer: Buffer };
const Encoder = require('kafkajs/src/protocol/encoder') as { new (size?: number): Enc; sizeOfVarLong(v: unknown): number; sizeOfVarInt(v: number): number };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as ((r: object) => Enc) & { unpatched: (r: object) => Enc };
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => { readVarLong(): { toString(): string }; readVarInt(): number };

/** Zigzag + unsigned LEB128 of a 64-bit signed value (Kafka's varlong; a varint is the same for int32). */
function varlong(v: bigint): Buffer {
  let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

const edges = [0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 2 ** 20, -(2 ** 20), 2 ** 30 - 1, -(2 ** 30) + 1, 2 ** 30, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31)];
const random = Array.from({ length: 2000 }, (_, i) => Math.round((Math.random() - 0.5) * 2 ** (1 + (i % 32))));

describe('kafkajs protocol encoder (patched)', () => {
  it('varints and varlongs have the protocol bytes, and sizeOfVarLong matches them', () => {
    for (const v of [...edges, ...random]) {
      expect(new Encoder().writeVarInt(v).buffer.toString('hex')).toBe(varlong(BigInt(v)).toString('hex'));
      expect(new Encoder().writeVarLong(v).buffer.toString('hex')).toBe(varlong(BigInt(v)).toString('hex'));
      expect(Encoder.sizeOfVarLong(v)).toBe(varlong(BigInt(v)).length);
    }
    for (const v of [2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER, '1700000000000', '-5']) {
      expect(new Encoder().writeVarLong(v).buffer.toString('hex')).toBe(varlong(BigInt(v)).toString('hex'));
      expect(Encoder.sizeOfVarLong(v)).toBe(varlong(BigInt(v)).length);
    }
  });

  it('unsigned varints are unsigned LEB128', () => {
    const leb = (v: number) => {
      const out: number[] = [];
      let x = v >>> 0;
      while (x >= 0x80) {
        out.push((x & 0x7f) | 0x80);
        x >>>= 7;
      }
      out.push(x);
      return Buffer.from(out).toString('hex');
    };
    for (const v of [0, 1, 127, 128, 300, 16383, 16384, 2 ** 28, 2 ** 32 - 1]) expect(new Encoder().writeUVarInt(v).buffer.toString('hex')).toBe(leb(v));
  });

  it('a record with key, value and headers encodes to its exact bytes and decodes back', () => {
    const key = Buffer.from('card-17');
    const value = Buffer.alloc(300, 7);
    const enc = Record({ offsetDelta: 3, timestampDelta: 1234, key, value, headers: { a: Buffer.from('x'), traceparent: '00-abc' } });
    const body = Buffer.concat([
      Buffer.from([0]), varlong(1234n), varlong(3n), varlong(BigInt(key.length)), key, varlong(BigInt(value.length)), value,
      varlong(2n), varlong(1n), Buffer.from('a'), varlong(1n), Buffer.from('x'), varlong(11n), Buffer.from('traceparent'), varlong(6n), Buffer.from('00-abc'),
    ]);
    expect(enc.buffer.toString('hex')).toBe(Buffer.concat([varlong(BigInt(body.length)), body]).toString('hex'));
    // grown buffers keep what was written before they grew
    const big = new Encoder(1).writeVarIntBytes(value).writeVarIntBytes(key).buffer;
    expect(big.toString('hex')).toBe(Buffer.concat([varlong(300n), value, varlong(7n), key]).toString('hex'));
    const d = new Decoder(new Encoder().writeVarLong(-98765).writeVarInt(4242).buffer);
    expect([d.readVarLong().toString(), d.readVarInt()]).toEqual(['-98765', 4242]);
  });

  it('encoding a record neither zero-fills buffers nor builds a Buffer per varint', () => {
    const alloc = jest.spyOn(Buffer, 'alloc');
    const from = jest.spyOn(Buffer, 'from');
    try {
      Record({ offsetDelta: 1, timestampDelta: 5, key: Buffer.from('k'), value: Buffer.alloc(64), headers: { h: Buffer.from('v') } });
      alloc.mockClear();
      from.mockClear();
      Record({ offsetDelta: 2, timestampDelta: 9, key: Buffer.from('k'), value: Buffer.alloc(64), headers: { h: Buffer.from('v') } });
      // the two Buffer.alloc/Buffer.from calls of this test's own arguments only
      expect(alloc.mock.calls.length).toBe(1);
      expect(from.mock.calls.length).toBe(2);
    } finally {
      alloc.mockRestore();
      from.mockRestore();
    }
  });

  it('records with any mix of key, value and headers encode to the same bytes as kafkajs did', () => {
    const pick = <T>(xs: T[], i: number) => xs[i % xs.length];
    const keys = [null, Buffer.from('card-1'), 'string-key', Buffer.alloc(0)];
    const values = [null, Buffer.alloc(200, 3), 'text value', Buffer.alloc(70000, 1)];
    const headerSets: Array<Record<string, Buffer | string | Array<Buffer | string>> | undefined> = [undefined, {}, { a: 'x' }, { 'tributary-done': 'score', trace: Buffer.from([1, 2, 3]) }, { multi: ['one', Buffer.from('two')], 'ü': 'é' }];
    for (let i = 0; i < 200; i++) {
      const r = { key: pick(keys, i), value: pick(values, i * 7), headers: pick(headerSets, i * 3), offsetDelta: i * 37, timestampDelta: i % 2 ? i * 1000 : -i };
      expect(Record(r).buffer.toString('hex')).toBe(Record.unpatched(r).buffer.toString('hex'));
    }
    expect(() => Record({ key: null, value: null, headers: { bad: undefined } })).toThrow();
  });

  it('a record with headers is one allocation (kafkajs: one more per header)', () => {
    const unsafe = jest.spyOn(Buffer, 'allocUnsafe');
    try {
      Record({ offsetDelta: 0, timestampDelta: 0, key: null, value: null, headers: { h1: 'a', h2: 'b' } });
      expect(unsafe.mock.calls.length).toBe(1);
    } finally {
      unsafe.mockRestore();
    }
  });
});

describe('kafkajs record batch CRC32-C (patched: eight bytes per step)', () => {
  const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;

  /** Byte-wise CRC32-C from its definition (reflected polynomial 0x82f63b78), no tables. */
  function reference(buf: Buffer): number {
    let crc = 0xffffffff;
    for (const byte of buf) {
      crc ^= byte;
      for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
    return (crc ^ 0xffffffff) >>> 0;
  }

  it('is the patched implementation, and gives the standard check value', () => {
    expect(require('node:fs').readFileSync(require.resolve('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js'), 'utf8')).toContain("require('./crc32CSliced')");
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283); // CRC-32C check value (RFC 3720)
    expect(crc32C(Buffer.alloc(0))).toBe(0);
    expect(crc32C(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43); // RFC 3720 B.4: 32 bytes of 0xff
  });

  it('matches the byte-wise reference on every length 0-70 and random buffers up to 64 KB, at any alignment', () => {
    const bytes = Buffer.from(Array.from({ length: 70 + 7 }, (_, i) => (i * 151 + 7) & 0xff));
    for (let len = 0; len <= 70; len++) for (const off of [0, 3, 7]) expect(crc32C(bytes.subarray(off, off + len))).toBe(reference(bytes.subarray(off, off + len)));
    for (let i = 0; i < 40; i++) {
      const buf = Buffer.from(Array.from({ length: Math.floor(Math.random() * 65536) }, () => Math.floor(Math.random() * 256)));
      expect(crc32C(buf)).toBe(reference(buf));
    }
  });
});
