/** The state file's format moved to src/util/stack-state.ts (the runtime reads it to find the local stack); kept for the stack's modules and tests. */
export * from '../util/stack-state';
