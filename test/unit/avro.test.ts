import * as fs from 'node:fs';
import * as path from 'node:path';
import * as avro from 'avsc';
import { SchemaCatalog, packageSchemasDir } from '../../src/kafka/avro-schemas';
import { AvroEncoder, classifyIncompatibility } from '../../src/kafka/avro-serde';
import type { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { generateTypes } from '../../src/kafka/avro-typegen';
import { repoRoot } from '../../src/stack/paths';
import { chunkBySize } from '../../src/engine/commit-sink';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);

function classify(writerSchema: unknown) {
  const reader = catalog.get('transaction').type;
  const writer = avro.Type.forSchema(writerSchema as avro.Schema);
  let error: Error = new Error('compatible');
  try {
    reader.createResolver(writer);
  } catch (err) {
    error = err as Error;
  }
  return classifyIncompatibility(reader, writer, 1, error);
}

describe('Avro schemas and serde', () => {
  const base = JSON.parse(catalog.get('transaction').text);

  it('classifies a writer lacking a required field as MISSING_FIELD, naming it', () => {
    const r = classify({ ...base, fields: base.fields.filter((f: { name: string }) => f.name !== 'cardId') });
    expect(r.kind).toBe('MISSING_FIELD');
    expect(r.message).toContain('cardId');
  });

  it('classifies a wrongly typed field as WRONG_TYPE, naming it', () => {
    const r = classify({ ...base, fields: base.fields.map((f: { name: string }) => (f.name === 'amount' ? { ...f, type: 'string' } : f)) });
    expect(r.kind).toBe('WRONG_TYPE');
    expect(r.message).toContain('amount');
  });

  it('keeps the generated TypeScript types in sync with schemas/: the package\'s own only (no example\'s input events)', () => {
    const committed = fs.readFileSync(path.join(repoRoot(), 'src/client/generated/avro-types.ts'), 'utf8');
    expect(committed).toBe(generateTypes(new SchemaCatalog(packageSchemasDir(), [])));
    expect(committed).not.toMatch(/\binterface Transaction\b|'transaction'/);
  });

  it('keeps each example\'s generated types in sync with its own schemas/ folder (scripts/gen-types.js)', () => {
    const examples = path.join(repoRoot(), 'examples');
    const withSchemas = fs.readdirSync(examples).filter((e) => fs.existsSync(path.join(examples, e, 'schemas')));
    for (const e of withSchemas) {
      const committed = fs.readFileSync(path.join(examples, e, 'generated/avro-types.ts'), 'utf8');
      expect(committed).toBe(generateTypes(new SchemaCatalog(path.join(examples, e, 'schemas'), []), `examples/${e}/schemas`));
    }
    // (The fraud example may be deleted: scripts/check-without-example.sh drops this test with it.)
    expect(withSchemas).toContain('fraud');
  });

  it('encodes with the Confluent header, each record in its own exact-size buffer, also past the scratch buffer\'s size', () => {
    const schema = new SchemaCatalog(packageSchemasDir()).get('feature-vector');
    const enc = new AvroEncoder<Record<string, unknown>>(undefined as unknown as SchemaRegistryClient, schema, 't');
    const vector = (names: string[]) => ({ key: 'k', featureSet: 's', featureVersion: 1, names, values: names.map((_, i) => i / 3), eventTime: 1, ingestTime: 2, lineage: { topic: 't', partition: 0, offset: 5 } });
    const small = vector(['a', 'b']);
    const large = vector(Array.from({ length: 4000 }, (_, i) => `feature_name_${i}_`.repeat(2))); // ~150 KB > the 64 KB scratch
    const a = enc.encodeWithId(7, small);
    const b = enc.encodeWithId(8, large);
    const c = enc.encodeWithId(9, small);
    expect(b.length).toBeGreaterThan(64 * 1024);
    // Checked after all three: an earlier record is not overwritten by later encodes.
    for (const [buf, id, v] of [[a, 7, small], [b, 8, large], [c, 9, small]] as const) {
      expect(buf[0]).toBe(0);
      expect(buf.readInt32BE(1)).toBe(id);
      expect(schema.type.fromBuffer(buf.subarray(5))).toMatchObject({ names: v.names, values: v.values });
      expect(buf.length).toBe(5 + schema.type.toBuffer(v).length);
    }
  });

  it('writes a frozen string array (feature names) once and copies its bytes after: every record byte for byte as plain avsc writes it', () => {
    const schema = new SchemaCatalog(packageSchemasDir()).get('feature-vector');
    const plain = avro.Type.forSchema(JSON.parse(schema.text) as avro.Schema); // not patched by the encoder
    const enc = new AvroEncoder<Record<string, unknown>>(undefined as unknown as SchemaRegistryClient, schema, 't');
    const vector = (names: string[], k: number) => ({ key: `k${k}`, featureSet: 's', featureVersion: 1, names, values: names.map((_, i) => i / 3 + k), eventTime: k, ingestTime: 2, lineage: { topic: 't', partition: 0, offset: k } });
    const a = Object.freeze(['amount', 'hour_of_day', 'merchant_risk']) as string[];
    const b = Object.freeze(['x', 'é ü 😀', '']) as string[];
    const huge = Object.freeze(Array.from({ length: 3000 }, (_, i) => `feature_name_${i}_`.repeat(2))) as string[]; // > the 64 KB scratch
    const mutable = ['m1', 'm2'];
    const strings = jest.spyOn(avro.types.StringType.prototype as unknown as { _write(t: unknown, v: unknown): void }, '_write');
    try {
      const writesOf = (v: Record<string, unknown>) => {
        const before = strings.mock.calls.length;
        const buf = enc.encodeWithId(3, v);
        const written = strings.mock.calls.length - before; // the encoder's string writes only
        expect(buf.subarray(5).equals(plain.toBuffer(v))).toBe(true);
        return written;
      };
      const first = writesOf(vector(a, 1));
      const again = writesOf(vector(a, 2));
      expect(first - again).toBe(a.length); // the names were not written string by string the second time
      expect(writesOf(vector(b, 3)) - again).toBe(b.length);
      expect(writesOf(vector(a, 4))).toBe(first); // the cache holds one array: switching back writes it again
      expect(writesOf(vector(a, 5))).toBe(again);
      writesOf(vector(huge, 6)); // overflows the scratch buffer: written again into a larger one
      expect(writesOf(vector(huge, 7))).toBe(again);
      // Not frozen: never cached, so a change in place is encoded as it is now.
      expect(writesOf(vector(mutable, 8)) - again).toBe(2);
      mutable.push('m3');
      mutable[0] = 'changed';
      expect(writesOf(vector(mutable, 9)) - again).toBe(3);
      const decoded = schema.type.fromBuffer(enc.encodeWithId(3, vector(mutable, 10)).subarray(5)) as { names: string[] };
      expect(decoded.names).toEqual(['changed', 'm2', 'm3']);
    } finally {
      strings.mockRestore();
    }
  });

  it('chunks messages so no chunk exceeds the size limit unless a single record does', () => {
    const msgs = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(100) }));
    const chunks = chunkBySize(msgs, 300);
    expect(chunks.flat()).toHaveLength(10);
    expect(chunks.every((c) => c.length === 2)).toBe(true);
    expect(chunkBySize([{ key: 'big', value: Buffer.alloc(1000) }], 300)).toHaveLength(1);
  });
});
