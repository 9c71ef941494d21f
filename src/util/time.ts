/** Calendar helpers on epoch milliseconds (UTC), shared by the CLI and the examples' generators. */

export const MS_PER_DAY = 86_400_000;

/** UTC midnight of the day holding `ms`. */
export function startOfUtcDay(ms: number): number {
  return Math.floor(ms / MS_PER_DAY) * MS_PER_DAY;
}
