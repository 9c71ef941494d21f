"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.LOG_LEVELS = void 0;
exports.isLogLevel = isLogLevel;
exports.logLevelFromEnv = logLevelFromEnv;
exports.logFormatFromEnv = logFormatFromEnv;
exports.createLogger = createLogger;
exports.configureLogging = configureLogging;
exports.currentLogFormat = currentLogFormat;
exports.currentLogLevel = currentLogLevel;
const pino_1 = __importDefault(require("pino"));
const log_format_1 = require("./log-format");
const redact_1 = require("./redact");
const terminal_line_1 = require("./terminal-line");
const DEFAULT_LEVEL = 'info';
exports.LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
function isLogLevel(value) {
    return exports.LOG_LEVELS.includes(value);
}
/** Level from TRIBUTARY_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent); unknown values fall back to 'info'. */
function logLevelFromEnv(env = process.env) {
    const wanted = (env.TRIBUTARY_LOG_LEVEL ?? '').trim().toLowerCase();
    return isLogLevel(wanted) ? wanted : DEFAULT_LEVEL;
}
/**
 * Format from TRIBUTARY_LOG_FORMAT (json|human); by default human on a terminal, JSON lines otherwise
 * (pipes, files, CI, the tests that parse log lines).
 */
function logFormatFromEnv(env = process.env, stderr = process.stderr) {
    const wanted = (env.TRIBUTARY_LOG_FORMAT ?? '').trim().toLowerCase();
    if (wanted === 'json' || wanted === 'human')
        return wanted;
    return stderr.isTTY ? 'human' : 'json';
}
/**
 * stderr, written synchronously (nothing lost when a command exits right after logging; stdout stays free for
 * command output). Every line is redacted here, after serialization, so no caller can leak a credential through a
 * message, a field, a URL or an error's stack.
 */
function stderrDestination(format) {
    const colour = (0, log_format_1.colourWanted)(process.stderr);
    // pino's own synchronous writer: it retries when a non-blocking stderr is full (EAGAIN) instead of dropping lines.
    const stderr = pino_1.default.destination({ fd: 2, sync: true });
    return {
        write(line) {
            const safe = (0, redact_1.redactSecrets)(line);
            stderr.write((0, terminal_line_1.aroundBar)(format() === 'human' ? (0, log_format_1.formatHumanLine)(safe, { colour }) : safe));
        },
    };
}
let root;
let currentLevel = logLevelFromEnv();
let currentFormat = logFormatFromEnv();
/** Every logger handed out, so a level chosen on the command line reaches the ones modules created at load time. */
const handedOut = new Set();
function rootLogger() {
    if (!root) {
        root = (0, pino_1.default)({
            level: currentLevel,
            base: { pid: process.pid },
            // Credentials must never reach the logs, whatever object a caller passes in.
            redact: { paths: ['password', '*.password', '*.*.password', 'sasl', '*.sasl', 'auth', '*.auth'], censor: '[redacted]' },
        }, stderrDestination(() => currentFormat));
    }
    return root;
}
/** A logger writing to stderr, tagged with `name`, at the level configured (TRIBUTARY_LOG_LEVEL or configureLogging). */
function createLogger(name) {
    const logger = rootLogger().child({ name });
    logger.level = currentLevel;
    handedOut.add(new WeakRef(logger));
    return logger;
}
/**
 * Applies a level and format to every logger (existing and future) and exports them through the environment,
 * so worker threads and child processes started afterwards log the same way.
 */
function configureLogging(opts) {
    if (opts.level) {
        currentLevel = opts.level;
        process.env.TRIBUTARY_LOG_LEVEL = opts.level;
    }
    if (opts.format) {
        currentFormat = opts.format;
        process.env.TRIBUTARY_LOG_FORMAT = opts.format;
    }
    if (root)
        root.level = currentLevel;
    for (const ref of handedOut) {
        const logger = ref.deref();
        if (!logger)
            handedOut.delete(ref);
        else
            logger.level = currentLevel;
    }
}
function currentLogFormat() {
    return currentFormat;
}
function currentLogLevel() {
    return currentLevel;
}
