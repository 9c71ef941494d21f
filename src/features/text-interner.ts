/**
 * Shares one string object among the held events that carry the same text.
 *
 * Why: a window state keeps each held event's distinct-count value (a merchant id, a device id) as
 * text. Decoded per event, every one is a string object of its own: the demo's state after 2.7 M
 * events held 2.73 M strings (66 MB of a ~100 MB live heap, BENCHMARKS item 33), and each
 * mark-compact of a grown process traced all of them. Values repeat (a card's merchants, a set's
 * countries), so handing the state the first string seen for a text leaves one object per distinct
 * text, and the per-event string dies young.
 *
 * Bounded: two generations of at most `maxTexts` texts each. When the young one is full it becomes
 * the old one and the previous old one is dropped; a text found in the old generation moves to the
 * young one. A text that falls out is still correct everywhere (strings compare by value); it is
 * only no longer shared with later events. So a set whose values rarely repeat (ids unique per
 * event) costs at most 2 x `maxTexts` map entries and gains nothing, which is the worst case.
 */
export class TextInterner {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  constructor(private readonly maxTexts = DEFAULT_INTERNED_TEXTS) {
    if (!(Number.isInteger(maxTexts) && maxTexts > 0)) throw new RangeError(`maxTexts must be a positive integer, got ${maxTexts}`);
  }

  /** The shared string equal to `text` (`text` itself the first time it is seen). */
  intern(text: string): string {
    const hit = this.young.get(text);
    if (hit !== undefined) return hit;
    const shared = this.old.get(text) ?? text;
    if (this.young.size >= this.maxTexts) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(shared, shared);
    return shared;
  }

  /** Texts held in both generations (a gauge, and for tests). */
  get size(): number {
    return this.young.size + this.old.size;
  }
}

/**
 * Texts kept per streaming set: enough for every merchant, country or device of a large deployment
 * to stay shared (65,536 texts of ~10 characters: ~5 MB with the maps), small beside the state.
 */
export const DEFAULT_INTERNED_TEXTS = 65_536;
