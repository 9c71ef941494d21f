import * as avro from 'avsc';
import { entityKey, fieldAt, fieldGetter, keyFieldProblem, parseFieldPath, resolveFieldPath, FieldPathSyntaxError } from '../../src/util/field-path';

const type = avro.Type.forSchema({
  type: 'record', name: 'Ev', fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'merchant', type: ['null', { type: 'record', name: 'M', fields: [{ name: 'country', type: ['null', 'string'], default: null }, { name: 'mcc', type: 'int' }] }], default: null },
  ],
});

describe('field paths (the one syntax)', () => {
  test('parses dotted Avro names and refuses anything else', () => {
    expect(parseFieldPath('merchant.country').segments).toEqual(['merchant', 'country']);
    for (const bad of ['', 'a..b', '1a', 'a.b[0]', 'a-b', '.a']) expect(() => parseFieldPath(bad)).toThrow(FieldPathSyntaxError);
  });
  test('reads nested values; a null record on the way reads null, a missing one undefined', () => {
    const v = { id: 'x', amount: 2, merchant: { country: 'FR', mcc: 5411 } };
    expect(fieldAt(v, parseFieldPath('merchant.country'))).toBe('FR');
    expect(fieldGetter('merchant.mcc')(v)).toBe(5411);
    expect(fieldGetter('id')(v)).toBe('x');
    expect(fieldAt({ ...v, merchant: null }, parseFieldPath('merchant.country'))).toBeNull();
    expect(fieldAt({ id: 'x' }, parseFieldPath('nope.deeper'))).toBeUndefined();
  });
  test('resolves against the schema through nullable unions, naming the bad segment', () => {
    const r = resolveFieldPath(type, 'merchant.country');
    expect(r.ok && r.nullable).toBe(true);
    const bad = resolveFieldPath(type, 'merchant.city');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problem).toContain("'merchant.city'");
    const notRecord = resolveFieldPath(type, 'amount.x');
    expect(!notRecord.ok && notRecord.problem).toContain("'amount' is not a record");
  });
  test('key fields must be keyable', () => {
    expect(keyFieldProblem(type, 'id')).toBeNull();
    expect(keyFieldProblem(type, 'merchant.mcc')).toBeNull();
    expect(keyFieldProblem(type, 'amount')).toContain('double');
    expect(entityKey({ merchant: { mcc: 7 } }, parseFieldPath('merchant.mcc'))).toBe('7');
    expect(entityKey({ merchant: null }, parseFieldPath('merchant.mcc'))).toBeNull();
  });
});
