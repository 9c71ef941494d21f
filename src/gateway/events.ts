import { REPARTITION_PROCESSOR } from '../engine/repartition';
import type { ProcessorRegistry } from '../stages/registry';
import type { LoadedTopology, StageSpec } from '../topology/spec';

/**
 * What a client of the gateway sees of its event's trip through the topology, in order. `ms` is
 * the time since the gateway received the request. The same objects are the SSE events of
 * /v1/stream, the pieces of /v1/predict's answer and what the idempotency store keeps.
 */
export type GatewayEvent =
  | { type: 'accepted'; ms: number; correlationId: string; topic: string; partition: number; offset: string }
  | { type: 'features'; ms: number; stage: string; value: unknown; featureSetVersions?: Record<string, string> }
  | { type: 'stage'; ms: number; stage: string; value: unknown }
  | { type: 'prediction'; ms: number; stage: string; value: unknown }
  | { type: 'shadow'; ms: number; stage: string; value: unknown }
  | { type: 'dead-letter'; ms: number; stage: string; errorKind: string; errorMessage: string }
  | { type: 'timeout'; ms: number; stage: string; detail: string }
  | { type: 'end'; ms: number; outcome: 'prediction' | 'dead-letter' | 'timeout'; missing?: string[] };

export type GatewayEventType = GatewayEvent['type'];
export const EVENT_TYPES: readonly GatewayEventType[] = ['accepted', 'features', 'stage', 'prediction', 'shadow', 'dead-letter', 'timeout', 'end'];

/** How a stage's output reaches the client: which event it becomes. */
export type StageRole = 'features' | 'stage' | 'prediction' | 'shadow' | 'hop';

/** The topology as the gateway sees it: the input, the role of each stage, the stages that read the input. */
export interface TopologyView {
  name: string;
  inputTopic: string;
  inputSchema: string;
  roles: Map<string, StageRole>;
  /** The stage whose output is the answer (the last stage of the live path). */
  predictionStage: string;
  /** Shadow stages (their own groups; each answers with a `shadow` event). */
  shadowStages: string[];
  /** Stages in topology order, repartition steps included (for "which stage it had reached"). */
  order: StageSpec[];
  /** The user's stage each internal step (repartition hop, per-entity step) belongs to. */
  hopOf: Map<string, string>;
}

/**
 * Roles from the topology: stages whose processor runs apart (onnx_shadow) are shadows; the live
 * stage whose output no other live stage reads is the prediction; `feature_extraction` stages
 * give `features`; repartition steps (the engine's hops) give nothing; anything else gives `stage` events.
 * `topology` is the effective one (src/stages/pipeline.ts effectiveTopology: hops inserted).
 */
export function topologyView(topology: LoadedTopology, processors: ProcessorRegistry): TopologyView {
  const stages = topology.spec.stages;
  // The engine's internal steps (repartition hops, the per-entity steps before a chained stage) answer nothing of their own.
  const hop = (s: StageSpec) => s.processor === REPARTITION_PROCESSOR || s.internalOf !== undefined;
  const apart = (s: StageSpec) => !hop(s) && processors.get(s.processor).runsApart === true;
  const live = stages.filter((s) => !apart(s));
  const produced = new Set(stages.map((s) => s.output.topic));
  const inputs = live.filter((s) => !produced.has(s.input.topic));
  if (inputs.length === 0) throw new Error(`topology ${topology.spec.name} has no input topic (every live stage reads another stage's output)`);
  const terminal = live.filter((s) => !live.some((o) => o !== s && o.input.topic === s.output.topic));
  const predictionStage = terminal[terminal.length - 1];
  const roles = new Map<string, StageRole>();
  for (const s of stages) {
    if (hop(s)) roles.set(s.name, 'hop');
    else if (apart(s)) roles.set(s.name, 'shadow');
    else if (s === predictionStage) roles.set(s.name, 'prediction');
    else if (s.processor === 'feature_extraction') roles.set(s.name, 'features');
    else roles.set(s.name, 'stage');
  }
  const inputTopic = inputs[0].input.topic;
  const inputSchema = topology.spec.topics.find((t) => t.name === inputTopic)!.schema;
  const hopOf = new Map(stages.filter(hop).map((h) => [h.name, h.internalOf ?? stages.find((s) => s.input.topic === h.output.topic)?.name ?? h.name]));
  return { name: topology.spec.name, inputTopic, inputSchema, roles, predictionStage: predictionStage.name, shadowStages: stages.filter(apart).map((s) => s.name), order: stages, hopOf };
}
