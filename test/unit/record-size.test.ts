import { chunkBySize, recordSize } from '../../src/engine/commit-sink';

describe('recordSize (the commit sink\'s estimate of a record\'s bytes in a produce request)', () => {
  it('counts key, value and every header in UTF-8 bytes, with fixed per-record and per-header overheads', () => {
    // 32 per record, 8 + name length per header; strings in UTF-8 bytes ('é' is 2, '€' is 3).
    expect(recordSize({ key: null, value: null })).toBe(32);
    expect(recordSize({ key: 'ké', value: Buffer.alloc(10) })).toBe(3 + 10 + 32);
    const headers = {
      'tributary-lineage': Buffer.alloc(40), // 17 + 8 + 40
      reply: '€uro', // 5 + 8 + 6
      multi: ['ab', Buffer.alloc(3)], // 5 + 8 + 2 + 3
      gone: undefined, // 4 + 8
    };
    expect(recordSize({ key: 'k', value: 'v', headers })).toBe(1 + 1 + 32 + (17 + 8 + 40) + (5 + 8 + 6) + (5 + 8 + 5) + (4 + 8));
  });

  it('decides the chunking: records whose headers push a chunk past the limit start the next one', () => {
    const withHeaders = Array.from({ length: 4 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(50), headers: { h: Buffer.alloc(60) } }));
    const each = recordSize(withHeaders[0]);
    expect(each).toBe(2 + 50 + 32 + (1 + 8 + 60));
    expect(chunkBySize(withHeaders, each * 2).map((c) => c.length)).toEqual([2, 2]);
    expect(chunkBySize(withHeaders, each * 2 - 1).map((c) => c.length)).toEqual([1, 1, 1, 1]);
  });
});
