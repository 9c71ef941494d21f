// Jest runs each test file in its own vm context, whose typed-array constructors differ from the
// main realm's. onnxruntime-node creates output tensors with the main realm's constructors and then
// rejects them when checked against the test realm's ("data must be type of function Float32Array").
// Sharing the main realm's typed arrays with the test context removes the mismatch.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer'];

class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = SharedTypedArrayEnvironment;
