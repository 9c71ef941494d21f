"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.StackNotRunningError = exports.ENDPOINT_ENV = void 0;
exports.parseBrokers = parseBrokers;
exports.endpointsFromState = endpointsFromState;
exports.resolveEndpoints = resolveEndpoints;
const process_1 = require("./process");
const paths_1 = require("./paths");
const state_1 = require("./state");
exports.ENDPOINT_ENV = {
    brokers: 'KAFKA_BROKERS',
    schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
    redisUrl: 'REDIS_URL',
};
class StackNotRunningError extends Error {
    name = 'StackNotRunningError';
}
exports.StackNotRunningError = StackNotRunningError;
/** Parses a comma-separated broker list ("a:1, b:2,") into ["a:1", "b:2"]. */
function parseBrokers(list) {
    return list
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean);
}
function endpointsFromState(state) {
    return { brokers: [...state.kafka.brokers], schemaRegistryUrl: state.registry.url, redisUrl: state.redis.url, source: 'local' };
}
function envValue(env, name) {
    const v = env[name]?.trim();
    return v ? v : undefined;
}
/**
 * Endpoints for the pipeline. Each of KAFKA_BROKERS (comma list), SCHEMA_REGISTRY_URL and REDIS_URL, when set,
 * wins for its own server; the rest come from the local stack's state file. `source` is 'env' only when all three
 * come from the environment, else 'local'. Throws StackNotRunningError when something is still missing, or
 * when the state file's processes needed for it are gone.
 */
function resolveEndpoints(opts = {}) {
    const env = opts.env ?? process.env;
    const brokersEnv = envValue(env, exports.ENDPOINT_ENV.brokers);
    const fromEnv = {
        brokers: brokersEnv ? parseBrokers(brokersEnv) : undefined,
        schemaRegistryUrl: envValue(env, exports.ENDPOINT_ENV.schemaRegistryUrl),
        redisUrl: envValue(env, exports.ENDPOINT_ENV.redisUrl),
    };
    if (fromEnv.brokers?.length && fromEnv.schemaRegistryUrl && fromEnv.redisUrl) {
        return { brokers: fromEnv.brokers, schemaRegistryUrl: fromEnv.schemaRegistryUrl, redisUrl: fromEnv.redisUrl, source: 'env' };
    }
    const file = opts.stateFile ?? (0, paths_1.stateFilePath)();
    const missing = Object.keys(exports.ENDPOINT_ENV)
        .filter((k) => (k === 'brokers' ? !fromEnv.brokers?.length : !fromEnv[k]))
        .map((k) => exports.ENDPOINT_ENV[k]);
    let state;
    try {
        state = (0, state_1.readState)(file);
    }
    catch (err) {
        throw new StackNotRunningError(`${err.message}; run \`tributary stack up\``);
    }
    if (!state) {
        throw new StackNotRunningError(`The local stack is not running (no ${file}) and ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set; run \`tributary stack up\``);
    }
    const needed = [];
    if (!fromEnv.brokers?.length)
        needed.push(['kafka', state.kafka.pid]);
    if (!fromEnv.schemaRegistryUrl)
        needed.push(['registry', state.registry.pid]);
    if (!fromEnv.redisUrl)
        needed.push(['redis', state.redis.pid]);
    const dead = needed.filter(([, pid]) => !(0, process_1.isPidAlive)(pid)).map(([name, pid]) => `${name} (pid ${pid})`);
    if (dead.length > 0) {
        throw new StackNotRunningError(`The local stack in ${file} is not running: ${dead.join(', ')} gone; run \`tributary stack up\``);
    }
    const local = endpointsFromState(state);
    return {
        brokers: fromEnv.brokers?.length ? fromEnv.brokers : local.brokers,
        schemaRegistryUrl: fromEnv.schemaRegistryUrl ?? local.schemaRegistryUrl,
        redisUrl: fromEnv.redisUrl ?? local.redisUrl,
        source: 'local',
    };
}
