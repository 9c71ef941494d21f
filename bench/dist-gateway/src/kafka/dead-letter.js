"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.RecordRejection = void 0;
/** A per-record failure that routes the record to the dead-letter topic instead of failing the batch. */
class RecordRejection {
    kind;
    message;
    constructor(kind, message) {
        this.kind = kind;
        this.message = message;
    }
}
exports.RecordRejection = RecordRejection;
