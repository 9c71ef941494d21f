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
exports.ProcessStopError = exports.SpawnError = void 0;
exports.delay = delay;
exports.isPidAlive = isPidAlive;
exports.commandLine = commandLine;
exports.wholeArg = wholeArg;
exports.commandLineMatches = commandLineMatches;
exports.isOurProcess = isOurProcess;
exports.processesWorkingIn = processesWorkingIn;
exports.spawnDetached = spawnDetached;
exports.runCommand = runCommand;
exports.stopProcess = stopProcess;
exports.lastLogLine = lastLogLine;
const child_process_1 = require("child_process");
const fs = __importStar(require("fs"));
/** Sleeps `ms` milliseconds. */
function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
/** True when a process with this pid exists and is not a zombie (it may belong to anything). */
function isPidAlive(pid) {
    if (!Number.isInteger(pid) || pid <= 0)
        return false;
    try {
        process.kill(pid, 0);
    }
    catch (err) {
        if (err.code !== 'EPERM')
            return false;
    }
    try {
        // Linux: field 3 of /proc/<pid>/stat is the state; 'Z' (zombie) and 'X' (dead) are not running.
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        return state !== 'Z' && state !== 'X';
    }
    catch {
        return true; // no /proc (macOS) or a race: trust kill(0)
    }
}
/** The process's command line joined by spaces, or undefined when it is gone or unreadable. */
function commandLine(pid) {
    try {
        const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const line = raw.split('\0').join(' ').trim();
        return line.length > 0 ? line : undefined;
    }
    catch {
        // no /proc: ask ps
    }
    try {
        const out = (0, child_process_1.execFileSync)('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        return out.trim() || undefined;
    }
    catch {
        return undefined;
    }
}
/** A marker that matches one whole command-line argument (so port 3707 does not match 37075). */
function wholeArg(arg) {
    return ` ${arg} `;
}
/** True when the command line contains every marker; markers may use wholeArg() to match a whole argument. */
function commandLineMatches(cmd, markers) {
    const padded = ` ${cmd} `;
    return markers.every((m) => padded.includes(m));
}
/**
 * True when `pid` is alive and its command line contains every marker: guards against acting on a pid
 * that was reused by an unrelated process (e.g. after a reboot).
 */
function isOurProcess(pid, markers) {
    if (!isPidAlive(pid))
        return false;
    const cmd = commandLine(pid);
    return cmd !== undefined && commandLineMatches(cmd, markers);
}
/**
 * Live pids (other than our own) whose working directory is `dir` or inside it and whose command line matches
 * `markers`; Linux only (reads /proc), empty elsewhere.
 */
function processesWorkingIn(dir, markers) {
    let entries;
    try {
        entries = fs.readdirSync('/proc');
    }
    catch {
        return [];
    }
    let real;
    try {
        real = fs.realpathSync(dir); // /proc/<pid>/cwd is a resolved path
    }
    catch {
        return []; // no such dir: nothing can be working in it
    }
    const root = `${real.replace(/\/+$/, '')}/`;
    const pids = [];
    for (const entry of entries) {
        if (!/^\d+$/.test(entry))
            continue;
        const pid = Number(entry);
        if (pid === process.pid)
            continue;
        let cwd;
        try {
            cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
        }
        catch {
            continue;
        }
        if (cwd !== real && !cwd.startsWith(root))
            continue;
        if (isOurProcess(pid, markers))
            pids.push(pid);
    }
    return pids;
}
class SpawnError extends Error {
    name = 'SpawnError';
}
exports.SpawnError = SpawnError;
/**
 * Starts `command` directly (no shell, so the pid is the server's own) in its own session, with stdout and
 * stderr appended to `logFile`, and unreferenced so it outlives this Node process.
 */
function spawnDetached(command, args, opts) {
    const fd = fs.openSync(opts.logFile, 'a');
    return new Promise((resolve, reject) => {
        let exitInfo;
        const child = (0, child_process_1.spawn)(command, [...args], {
            cwd: opts.cwd,
            env: opts.env ?? process.env,
            detached: true,
            stdio: ['ignore', fd, fd],
        });
        child.once('error', (err) => reject(new SpawnError(`Could not start ${command}: ${err.message}`)));
        child.once('exit', (code, signal) => {
            exitInfo = { code, signal };
        });
        child.once('spawn', () => {
            child.unref();
            resolve({ pid: child.pid, exit: () => exitInfo });
        });
    }).finally(() => fs.closeSync(fd));
}
/** Runs a short command to completion, capturing stdout+stderr; never throws for a non-zero exit. */
function runCommand(command, args, opts = {}) {
    return new Promise((resolve, reject) => {
        (0, child_process_1.execFile)(command, [...args], { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 0, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
            const output = `${stdout ?? ''}${stderr ?? ''}`;
            if (err && typeof err.code === 'string') {
                reject(new SpawnError(`Could not run ${command}: ${err.message}`));
                return;
            }
            const code = err ? (typeof err.code === 'number' ? (err.code) : 1) : 0;
            resolve({ code, output });
        });
    });
}
class ProcessStopError extends Error {
    name = 'ProcessStopError';
}
exports.ProcessStopError = ProcessStopError;
async function waitForExit(pid, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (!isPidAlive(pid))
            return true;
        await delay(100);
    }
    return !isPidAlive(pid);
}
/**
 * Stops exactly `pid`: SIGTERM, wait up to `timeoutMs`, then SIGKILL. Does nothing when the pid is gone, or
 * alive but not matching `markers` (a reused pid). Throws ProcessStopError if it survives SIGKILL.
 */
async function stopProcess(pid, markers, timeoutMs) {
    if (!isPidAlive(pid))
        return 'not-running';
    if (!isOurProcess(pid, markers))
        return 'not-ours';
    try {
        process.kill(pid, 'SIGTERM');
    }
    catch {
        return 'not-running';
    }
    if (await waitForExit(pid, timeoutMs))
        return 'stopped';
    try {
        process.kill(pid, 'SIGKILL');
    }
    catch {
        return 'stopped';
    }
    if (await waitForExit(pid, 5_000))
        return 'killed';
    throw new ProcessStopError(`Process ${pid} is still alive after SIGKILL`);
}
/** The last line of a log file matching `pattern` (or simply the last non-empty line), trimmed to `max` chars. */
function lastLogLine(logFile, pattern = /ERROR|Exception|FATAL|Error:/, max = 300) {
    let text;
    try {
        const fd = fs.openSync(logFile, 'r');
        try {
            const size = fs.fstatSync(fd).size;
            const len = Math.min(size, 64 * 1024);
            const buf = Buffer.alloc(len);
            fs.readSync(fd, buf, 0, len, size - len);
            text = buf.toString('utf8');
        }
        finally {
            fs.closeSync(fd);
        }
    }
    catch {
        return undefined;
    }
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    const chosen = [...lines].reverse().find((l) => pattern.test(l)) ?? lines[lines.length - 1];
    if (!chosen)
        return undefined;
    return chosen.length > max ? `${chosen.slice(0, max)}…` : chosen;
}
