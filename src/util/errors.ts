/** Named error classes shared across the project. Each carries enough context to act on. */

export class TributaryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem in a topology file or model card: `path` names the bad field, e.g. `stages[1].config.threshold`. */
export class ConfigError extends TributaryError {
  constructor(
    readonly path: string,
    readonly detail: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${path || '(root)'}: ${detail}`);
  }
}

/** Several ConfigErrors found at once; the message lists every one. */
export class ConfigErrors extends TributaryError {
  constructor(readonly errors: ConfigError[]) {
    super(`invalid configuration:\n${errors.map((e) => `  - ${e.message}`).join('\n')}`);
  }
}

/**
 * A failure of something outside the record (a dependency down, a timeout): the engine retries the
 * batch with backoff for as long as it lasts and never dead-letters records because of it.
 */
export class TransientError extends TributaryError {}

/**
 * A processor's results for a batch were computed from state that another writer changed before
 * the results' state write landed (an optimistic check refused it after the results had gone on to
 * the stages after it — BatchScope.beforeCommit): the engine runs the chunk again at once, this
 * time with every state write awaited inside the processor (its own recompute loop), rather than
 * backing off as from a failure.
 */
export class RerunBatchError extends TransientError {}
