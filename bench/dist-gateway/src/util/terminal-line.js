"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.setBarLine = setBarLine;
exports.aroundBar = aroundBar;
/**
 * The progress bar line at the bottom of a terminal: log lines written while a bar is drawn go above it
 * (the bar is cleared, the log line written, the bar drawn again), so neither garbles the other.
 */
let barText;
/** A progress bar now shows `text` (undefined: its line has ended). */
function setBarLine(text) {
    barText = text;
}
/** Wraps a log line for stderr so that it lands above a drawn bar, which is redrawn below it. */
function aroundBar(logLine) {
    return barText === undefined ? logLine : `\r\u001b[K${logLine}\r${barText}\u001b[K`;
}
