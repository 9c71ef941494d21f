/**
 * Endpoint resolution moved to src/util/endpoints.ts: runtime code must not import the development
 * stack (lint:layers). Kept so the stack's tests and src/stages/extraction.ts (features branch) still
 * compile; new code imports util/endpoints.
 */
export * from '../util/endpoints';
