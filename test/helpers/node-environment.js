// Jest runs each test file in its own vm context, whose typed-array constructors differ from the
// main realm's. onnxruntime-node creates output tensors with the main realm's constructors and then
// rejects them when checked against the test realm's ("data must be type of function Float32Array").
// Sharing the main realm's typed arrays with the test context removes the mismatch.
//
// Each test file also gets a temp folder of its own as TMPDIR (os.tmpdir(), and the processes a
// test starts), removed when the file ends: tests make scratch folders for topologies, models and
// reports, and without this they piled up in the machine's temp folder run after run.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer'];

class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    // Set before the base class copies process.env into the test's `process`.
    const outer = process.env.TMPDIR;
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-jest-'));
    process.env.TMPDIR = scratch;
    super(config, context);
    this.scratch = scratch;
    this.outerTmpdir = outer;
    for (const name of SHARED) this.global[name] = globalThis[name];
  }

  async teardown() {
    await super.teardown();
    if (this.outerTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = this.outerTmpdir;
    fs.rmSync(this.scratch, { recursive: true, force: true });
  }
}

module.exports = SharedTypedArrayEnvironment;
