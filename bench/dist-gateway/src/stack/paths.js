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
exports.STATE_FILE_NAME = exports.RepoRootNotFoundError = void 0;
exports.repoRoot = repoRoot;
exports.tributaryHome = tributaryHome;
exports.cacheDir = cacheDir;
exports.stackDir = stackDir;
exports.stateFilePath = stateFilePath;
const fs = __importStar(require("fs"));
const path = __importStar(require("path"));
const PACKAGE_NAME = 'tributary';
class RepoRootNotFoundError extends Error {
    name = 'RepoRootNotFoundError';
    constructor(start) {
        super(`Could not find the tributary package root (a package.json named "${PACKAGE_NAME}") above ${start}`);
    }
}
exports.RepoRootNotFoundError = RepoRootNotFoundError;
function isTributaryRoot(dir) {
    try {
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
        return pkg.name === PACKAGE_NAME;
    }
    catch {
        return false;
    }
}
function walkUp(start) {
    let dir = path.resolve(start);
    for (;;) {
        if (isTributaryRoot(dir))
            return dir;
        const parent = path.dirname(dir);
        if (parent === dir)
            return undefined;
        dir = parent;
    }
}
let cachedRoot;
/**
 * The repository (package) root: the nearest directory above this module with a package.json named
 * "tributary". Works from src/ (ts-jest) and from dist/ (after tsc); falls back to the working directory.
 */
function repoRoot() {
    if (cachedRoot)
        return cachedRoot;
    const found = walkUp(__dirname) ?? walkUp(process.cwd());
    if (!found)
        throw new RepoRootNotFoundError(__dirname);
    cachedRoot = found;
    return found;
}
/** $TRIBUTARY_HOME, default `<repo root>/.tributary`. */
function tributaryHome(env = process.env) {
    const fromEnv = env.TRIBUTARY_HOME?.trim();
    return fromEnv ? path.resolve(fromEnv) : path.join(repoRoot(), '.tributary');
}
/** Downloaded server artifacts (Kafka jars, Apicurio registry). */
function cacheDir(home = tributaryHome()) {
    return path.join(home, 'cache');
}
/** Directory holding the local stack's state file and per-server data dirs. */
function stackDir(home = tributaryHome()) {
    return path.join(home, 'stack');
}
exports.STATE_FILE_NAME = 'state.json';
/** `$TRIBUTARY_HOME/stack/state.json`, or `<stateDir>/state.json` for an explicit stack dir. */
function stateFilePath(dir = stackDir()) {
    return path.join(dir, exports.STATE_FILE_NAME);
}
