/** The shared statistics moved to src/util/stats.ts (routing, shadow and backfill use them); kept for existing imports. */
export * from '../util/stats';
