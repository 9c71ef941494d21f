import type { StageSpec } from '../topology/spec';

/** One chain of the plan: consecutive stages executed in memory under the first one's consumer group. */
export interface PlannedChain {
  stages: StageSpec[];
}

export interface PlanOptions {
  /** Fuse consecutive stages (default true). False: every stage is its own chain (its own group). */
  fuse: boolean;
  /** Stages that never join a chain (their processor says `runsApart`, e.g. shadows). */
  runsApart(stage: StageSpec): boolean;
  /**
   * Topics a chain never fuses across (repartition topics): the records must really go through
   * Kafka to be re-partitioned, so the stage after such a topic heads a chain of its own.
   */
  boundaries?: ReadonlySet<string>;
}

/**
 * Splits the stages that run in this process into chains. Stage B joins the chain of stage A when
 * B reads A's output topic, no other stage of this process reads that topic as a chain member, both
 * deliver the same way, and B does not run apart. The intermediate topic stays a side output (it is
 * written in the same transaction), so readers in other groups (shadows, audits) still get it.
 */
export function planChains(selected: StageSpec[], opts: PlanOptions): PlannedChain[] {
  const delivery = (s: StageSpec) => s.delivery ?? 'exactly-once';
  const next = new Map<StageSpec, StageSpec>();
  if (opts.fuse) {
    for (const a of selected) {
      if (opts.runsApart(a) || opts.boundaries?.has(a.output.topic)) continue;
      const readers = selected.filter((s) => s !== a && s.input.topic === a.output.topic && !opts.runsApart(s));
      if (readers.length === 1 && delivery(readers[0]) === delivery(a)) next.set(a, readers[0]);
    }
  }
  const followers = new Set(next.values());
  const chains: PlannedChain[] = [];
  for (const head of selected) {
    if (followers.has(head)) continue;
    const stages = [head];
    for (let s = next.get(head); s && !stages.includes(s); s = next.get(s)) stages.push(s);
    chains.push({ stages });
  }
  // A cycle of fusable stages has no head: run those stages apart rather than drop them.
  const placed = new Set(chains.flatMap((c) => c.stages));
  for (const s of selected) if (!placed.has(s)) chains.push({ stages: [s] });
  return chains;
}

/** The fused edges of a plan: (stage before, stage after, intermediate topic). */
export function fusedEdges(chains: PlannedChain[]): { upstream: StageSpec; downstream: StageSpec; topic: string }[] {
  return chains.flatMap((c) => c.stages.slice(1).map((s, i) => ({ upstream: c.stages[i], downstream: s, topic: s.input.topic })));
}
