/** Moved to src/util/paths.ts (runtime code needs the paths, not the development stack); kept for the stack's own modules and tests. */
export * from '../util/paths';
