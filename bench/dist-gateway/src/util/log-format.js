"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.colourWanted = colourWanted;
exports.formatHumanLine = formatHumanLine;
/**
 * Human rendering of pino's JSON log lines for a terminal: `12:03:04 INFO  stack  started kafka  port=9092`.
 * JSON stays the machine format; this only changes how a line looks, never what it says.
 */
const node_util_1 = require("node:util");
const LEVELS = {
    10: { label: 'TRACE', style: 'gray' },
    20: { label: 'DEBUG', style: 'gray' },
    30: { label: 'INFO ', style: 'cyan' },
    40: { label: 'WARN ', style: 'yellow' },
    50: { label: 'ERROR', style: 'red' },
    60: { label: 'FATAL', style: 'red' },
};
/** Keys pino adds that a person does not need on every line. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);
/** Whether to colour: a terminal, and neither NO_COLOR nor TERM=dumb (https://no-color.org). */
function colourWanted(stream, env = process.env) {
    if (env.FORCE_COLOR && env.FORCE_COLOR !== '0')
        return true;
    return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
}
function paint(style, text, colour) {
    const codes = style ? node_util_1.inspect.colors[style] : undefined;
    return colour && codes ? `\u001b[${codes[0]}m${text}\u001b[${codes[1]}m` : text;
}
function fieldValue(value) {
    if (typeof value === 'string')
        return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
    return JSON.stringify(value);
}
/** One JSON log line (as pino writes it) as one human line; lines that are not JSON pass through unchanged. */
function formatHumanLine(jsonLine, opts) {
    let record;
    try {
        record = JSON.parse(jsonLine);
    }
    catch {
        return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
    }
    const level = LEVELS[Number(record.level)] ?? { label: String(record.level).toUpperCase().padEnd(5), style: 'white' };
    const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 19) : '';
    const parts = [paint('gray', time, opts.colour), paint(level.style, level.label, opts.colour)];
    if (record.name)
        parts.push(paint('gray', String(record.name), opts.colour));
    parts.push(paint(Number(record.level) >= 40 ? 'bold' : undefined, String(record.msg ?? ''), opts.colour));
    const fields = [];
    let stack;
    for (const [key, value] of Object.entries(record)) {
        if (HIDDEN.has(key) || value === undefined)
            continue;
        if (key === 'err' && value && typeof value === 'object') {
            const err = value;
            fields.push(`${paint('gray', 'err=', opts.colour)}${fieldValue(err.message ?? '')}`);
            if (Number(record.level) <= 20)
                stack = err.stack;
            continue;
        }
        fields.push(`${paint('gray', `${key}=`, opts.colour)}${fieldValue(value)}`);
    }
    const line = [...parts, ...fields].filter(Boolean).join(' ');
    return `${line}\n${stack ? `${paint('gray', stack, opts.colour)}\n` : ''}`;
}
