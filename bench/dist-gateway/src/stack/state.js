"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.StateFileError = void 0;
exports.parseState = parseState;
exports.readState = readState;
exports.writeState = writeState;
exports.removeState = removeState;
const fs = __importStar(require("fs"));
const path = __importStar(require("path"));
class StateFileError extends Error {
    name = 'StateFileError';
}
exports.StateFileError = StateFileError;
function isRecord(v) {
    return typeof v === 'object' && v !== null;
}
function hasPid(v) {
    return isRecord(v) && Number.isInteger(v.pid) && Number.isInteger(v.port);
}
/** Parses and shape-checks a state file's text. */
function parseState(text, file = 'state file') {
    let data;
    try {
        data = JSON.parse(text);
    }
    catch (err) {
        throw new StateFileError(`${file} is not valid JSON: ${err.message}`);
    }
    if (!isRecord(data) ||
        data.version !== 1 ||
        !hasPid(data.kafka) ||
        !hasPid(data.registry) ||
        !hasPid(data.redis) ||
        !Array.isArray(data.kafka.brokers) ||
        typeof data.registry.url !== 'string' ||
        typeof data.redis.url !== 'string') {
        throw new StateFileError(`${file} does not look like a version 1 tributary stack state`);
    }
    return data;
}
/** The state in `file`, or undefined when there is none. */
function readState(file) {
    let text;
    try {
        text = fs.readFileSync(file, 'utf8');
    }
    catch (err) {
        if (err.code === 'ENOENT')
            return undefined;
        throw err;
    }
    return parseState(text, file);
}
/** Writes atomically (temp file + rename) so readers never see half a file. */
function writeState(file, state) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
    fs.renameSync(tmp, file);
}
function removeState(file) {
    fs.rmSync(file, { force: true });
}
