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
exports.SchemaCatalog = exports.SchemaNotFoundError = void 0;
const fs = __importStar(require("node:fs"));
const path = __importStar(require("node:path"));
const avro = __importStar(require("avsc"));
const errors_1 = require("../util/errors");
class SchemaNotFoundError extends errors_1.TributaryError {
}
exports.SchemaNotFoundError = SchemaNotFoundError;
/** Reads Avro schemas from the project's schemas/ folder, once each. */
class SchemaCatalog {
    dir;
    cache = new Map();
    constructor(dir) {
        this.dir = dir;
    }
    has(name) {
        return fs.existsSync(this.fileOf(name));
    }
    get(name) {
        const cached = this.cache.get(name);
        if (cached)
            return cached;
        const file = this.fileOf(name);
        if (!fs.existsSync(file)) {
            throw new SchemaNotFoundError(`no Avro schema '${name}' (expected ${file})`);
        }
        const json = JSON.parse(fs.readFileSync(file, 'utf8'));
        const type = avro.Type.forSchema(json);
        const schema = { name, file, type, text: JSON.stringify(json) };
        this.cache.set(name, schema);
        return schema;
    }
    names() {
        return fs
            .readdirSync(this.dir)
            .filter((f) => f.endsWith('.avsc'))
            .map((f) => f.slice(0, -'.avsc'.length))
            .sort();
    }
    fileOf(name) {
        return path.join(this.dir, `${name}.avsc`);
    }
}
exports.SchemaCatalog = SchemaCatalog;
