#!/usr/bin/env node
/**
 * Writes a real ONNX logistic-regression model for an existing model card, and records its sha256
 * in the card: the quickest way to make a scaffolded pipeline (`tributary init`) score end to end
 * before a trained model exists, and what the init test drops in.
 *
 *   node scripts/make-onnx-model.js DIR [--weights 0.5,-1,...] [--bias B]
 *
 * DIR is a model version folder (models/<name>/<version>/) holding model.json. The graph is
 * p = sigmoid(x · w + b) with output `probabilities` = [1 - p, p] (the layout skl2onnx classifiers
 * use, so the card's `score: { output: probabilities, index: 1 }` applies), input named after the
 * card's inputs[0], width = the card's feature count. Default weights: 1 / width each, bias 0.
 * Built with onnx-proto (the ONNX protobuf definitions; a devDependency), opset 13.
 */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { onnx } = require('onnx-proto');

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { dir: undefined, weights: undefined, bias: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--weights') out.weights = argv[++i].split(',').map(Number);
    else if (a === '--bias') out.bias = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node scripts/make-onnx-model.js DIR [--weights w1,w2,...] [--bias B]\n');
      process.exit(0);
    } else if (!out.dir) out.dir = a;
    else fail(`unexpected argument '${a}'`);
  }
  if (!out.dir) fail('give the model version folder (models/<name>/<version>)');
  if (out.weights && out.weights.some((w) => !Number.isFinite(w))) fail('--weights: numbers separated by commas');
  if (!Number.isFinite(out.bias)) fail('--bias: a number');
  return out;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function tensorType(name, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
}

function initializer(name, dims, values) {
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, floatData: values });
}

/** The logistic-regression graph: MatMul + Add + Sigmoid, then [1 - p, p]. */
function buildModel(inputName, weights, bias) {
  const width = weights.length;
  const node = (opType, input, output, attribute = []) => onnx.NodeProto.create({ opType, input, output, name: `${opType}_${output[0]}`, attribute });
  const graph = onnx.GraphProto.create({
    name: 'logistic_regression',
    input: [tensorType(inputName, ['batch', width])],
    output: [tensorType('probabilities', ['batch', 2])],
    initializer: [initializer('weights', [width, 1], weights), initializer('bias', [1], [bias]), initializer('one', [1], [1])],
    node: [
      node('MatMul', [inputName, 'weights'], ['logit_raw']),
      node('Add', ['logit_raw', 'bias'], ['logit']),
      node('Sigmoid', ['logit'], ['p_positive']),
      node('Sub', ['one', 'p_positive'], ['p_negative']),
      node('Concat', ['p_negative', 'p_positive'], ['probabilities'], [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })]),
    ],
  });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'tributary scripts/make-onnx-model.js',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = path.resolve(args.dir);
  const cardFile = path.join(dir, 'model.json');
  if (!fs.existsSync(cardFile)) fail(`${cardFile} not found (the model card comes first: tributary init writes one)`);
  const card = JSON.parse(fs.readFileSync(cardFile, 'utf8'));
  const names = card.features && card.features.names;
  if (!Array.isArray(names) || names.length === 0) fail(`${cardFile}: features.names must list the model's features`);
  const weights = args.weights ?? names.map(() => 1 / names.length);
  if (weights.length !== names.length) fail(`--weights: ${weights.length} values for ${names.length} features`);
  const inputName = (card.inputs && card.inputs[0] && card.inputs[0].name) || 'float_input';
  const bytes = onnx.ModelProto.encode(buildModel(inputName, weights, args.bias)).finish();
  const modelFile = path.join(dir, 'model.onnx');
  fs.writeFileSync(modelFile, bytes);
  card.inputs = [{ name: inputName, type: 'float32', shape: [-1, names.length] }];
  card.outputs = [{ name: 'probabilities', type: 'float32', shape: [-1, 2] }];
  card.score = { output: 'probabilities', index: 1 };
  card.sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  card.sizeBytes = bytes.length;
  card.hyperparameters = { ...(card.hyperparameters || {}), estimator: 'logistic regression (fixed weights)', weights, bias: args.bias };
  fs.writeFileSync(cardFile, `${JSON.stringify(card, null, 2)}\n`);
  process.stdout.write(`${modelFile}: ${bytes.length} bytes, ${names.length} features, sha256 ${card.sha256} (written to model.json)\n`);
}

main();
