"use strict";
/** Named error classes shared across the project. Each carries enough context to act on. */
Object.defineProperty(exports, "__esModule", { value: true });
exports.TransientError = exports.ConfigErrors = exports.ConfigError = exports.TributaryError = void 0;
class TributaryError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = new.target.name;
    }
}
exports.TributaryError = TributaryError;
/** A problem in a topology file or model card: `path` names the bad field, e.g. `stages[1].config.threshold`. */
class ConfigError extends TributaryError {
    path;
    detail;
    file;
    constructor(path, detail, file) {
        super(`${file ? `${file}: ` : ''}${path || '(root)'}: ${detail}`);
        this.path = path;
        this.detail = detail;
        this.file = file;
    }
}
exports.ConfigError = ConfigError;
/** Several ConfigErrors found at once; the message lists every one. */
class ConfigErrors extends TributaryError {
    errors;
    constructor(errors) {
        super(`invalid configuration:\n${errors.map((e) => `  - ${e.message}`).join('\n')}`);
        this.errors = errors;
    }
}
exports.ConfigErrors = ConfigErrors;
/**
 * A failure of something outside the record (a dependency down, a timeout): the engine retries the
 * batch with backoff for as long as it lasts and never dead-letters records because of it.
 */
class TransientError extends TributaryError {
}
exports.TransientError = TransientError;
