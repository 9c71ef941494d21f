import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoadedTopology, StageSpec, TopologySpec } from '../../src/topology/spec';
import { repoRoot } from '../../src/stack/paths';
import { isolatedTopology } from './topology';

const V1 = path.join(repoRoot(), 'models/fraud/1');

/**
 * A model repository in a temp dir: `fraud/<version>` for each entry, each a copy of models/fraud/1
 * with the card's version rewritten; `tamper` may then change the copy (gate bounds, weights, card).
 */
export function tempModelRepo(versions: Record<string, ((dir: string) => void) | null>): string {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-models-'));
  for (const [version, tamper] of Object.entries(versions)) {
    const dir = path.join(repo, 'fraud', version);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(V1)) fs.copyFileSync(path.join(V1, f), path.join(dir, f));
    const card = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    card.version = version;
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card, null, 2));
    tamper?.(dir);
  }
  return repo;
}

/** Tamper: a gate bound v1 cannot meet (ROC AUC >= 0.999). */
export function impossibleGate(dir: string): void {
  const file = path.join(dir, 'gate.json');
  const gate = JSON.parse(fs.readFileSync(file, 'utf8'));
  gate.confidence.metrics[0].min = 0.999;
  fs.writeFileSync(file, JSON.stringify(gate, null, 2));
}

/** Tamper: flips bytes in the middle of the weights (sha256 no longer matches the card). */
export function corruptWeights(dir: string): void {
  const file = path.join(dir, 'model.onnx');
  const bytes = fs.readFileSync(file);
  for (let i = 0; i < 16; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0xff;
  fs.writeFileSync(file, bytes);
}

/** Tamper: marks the card approved (for the latest-approved policy). */
export function approve(dir: string): void {
  const file = path.join(dir, 'model.json');
  const card = JSON.parse(fs.readFileSync(file, 'utf8'));
  card.approvedBy = { name: 'test', at: new Date().toISOString() };
  fs.writeFileSync(file, JSON.stringify(card, null, 2));
}

/**
 * The fraud topology on model 1 (stateless fraud_txn features, no Redis feature sets), topics
 * suffixed; `repository` (absolute) holds the model versions. `edit` may change the spec further.
 */
export function v1Topology(suffix: string, repository = path.join(repoRoot(), 'models'), edit?: (spec: TopologySpec) => void): LoadedTopology {
  return isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    applyV1(spec, repository);
    edit?.(spec);
  });
}

export function applyV1(spec: TopologySpec, repository: string): void {
  delete spec.features;
  const extract = spec.stages.find((s) => s.name === 'extract')!;
  extract.config = { featureSet: { file: 'models/fraud/features/fraud_txn.yaml' } };
  const score = spec.stages.find((s) => s.name === 'score')!;
  score.config = { model: { repository, name: 'fraud', version: '1' }, threshold: 0.5 };
  for (const s of spec.stages) s.consumer = { ...(s.consumer ?? {}), sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 };
}

export function stage(spec: TopologySpec, name: string): StageSpec {
  const s = spec.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}
