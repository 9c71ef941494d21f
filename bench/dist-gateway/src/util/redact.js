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
exports.REDACTED = void 0;
exports.redactUrlCredentials = redactUrlCredentials;
exports.secretForms = secretForms;
exports.resetSecretCache = resetSecretCache;
exports.redactSecrets = redactSecrets;
/**
 * Credential redaction for anything printed: log lines, error messages, command output.
 *
 * Two layers, because one is never enough for secrets:
 *  1. structural: the password part of `scheme://user:pass@host` URLs (redis, rediss, kafka, http(s) registry URLs);
 *  2. by value: the secrets this process was given through its environment (REDIS_PASSWORD, password files,
 *     SCHEMA_REGISTRY_PASSWORD, KAFKA_SASL_PASSWORD, passwords inside REDIS_URL & co.), in plain, URL-encoded and
 *     base64 `user:pass` forms (the Basic auth header), wherever they appear.
 */
const fs = __importStar(require("node:fs"));
exports.REDACTED = '[redacted]';
/** `scheme://user:password@` -> `scheme://user:[redacted]@` (the user name stays: it helps debugging and is not a secret). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:"'<>]*):([^\s/@"'<>]+)@/gi;
function redactUrlCredentials(text) {
    return text.replace(URL_CREDENTIALS, (_m, scheme, user) => `${scheme}${user}:${exports.REDACTED}@`);
}
/** Environment variables holding a password directly, or a file holding one. */
const SECRET_VARS = ['REDIS_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD', 'KAFKA_SASL_PASSWORD'];
const SECRET_FILE_VARS = ['REDIS_PASSWORD_FILE', 'KAFKA_SASL_PASSWORD_FILE', 'SCHEMA_REGISTRY_PASSWORD_FILE'];
/** Variables that may hold a URL with credentials. */
const URL_VARS = ['REDIS_URL', 'SCHEMA_REGISTRY_URL', 'KAFKA_BROKERS'];
/** User names paired with passwords, for the base64 `user:pass` form. */
const USER_VARS = ['REDIS_USERNAME', 'SCHEMA_REGISTRY_USERNAME', 'KAFKA_SASL_USERNAME'];
function readSecretFile(file) {
    try {
        return fs.readFileSync(file, 'utf8').trim() || undefined;
    }
    catch {
        return undefined;
    }
}
/** Every form of every secret found in `env` that could end up in text (shortest secrets are ignored: too many false hits). */
function secretForms(env = process.env) {
    const passwords = new Set();
    const users = new Set();
    for (const name of SECRET_VARS)
        if (env[name])
            passwords.add(env[name]);
    for (const name of SECRET_FILE_VARS) {
        const value = env[name] ? readSecretFile(env[name]) : undefined;
        if (value)
            passwords.add(value);
    }
    for (const name of USER_VARS)
        if (env[name])
            users.add(env[name]);
    for (const name of URL_VARS) {
        // The same pattern as the structural redaction: also covers URLs WHATWG parsing rejects (redis+cluster://u:p@h:1,h:2).
        for (const m of (env[name] ?? '').matchAll(URL_CREDENTIALS)) {
            const decode = (v) => {
                try {
                    return decodeURIComponent(v);
                }
                catch {
                    return v;
                }
            };
            if (m[3]) {
                passwords.add(decode(m[3]));
                passwords.add(m[3]);
            }
            if (m[2])
                users.add(decode(m[2]));
        }
    }
    const forms = new Set();
    for (const password of passwords) {
        if (password.length < 4)
            continue;
        forms.add(password);
        forms.add(encodeURIComponent(password));
        forms.add(Buffer.from(password).toString('base64'));
        for (const user of users)
            forms.add(Buffer.from(`${user}:${password}`).toString('base64'));
    }
    // Longest first, so a form containing another is replaced whole.
    return [...forms].sort((a, b) => b.length - a.length);
}
let cachedForms;
/** Forgets the secrets read from the environment (tests change it). */
function resetSecretCache() {
    cachedForms = undefined;
}
/** Redacts URL credentials and every known secret from `text`. */
function redactSecrets(text, forms = (cachedForms ??= secretForms())) {
    let out = redactUrlCredentials(text);
    for (const form of forms)
        if (out.includes(form))
            out = out.split(form).join(exports.REDACTED);
    return out;
}
