/**
 * Backfill throughput against the live stages over the same backlog. Not a test: `npm run
 * bench:backfill` (local stack up, or KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL set). Prints a
 * table and writes bench/results/<time>-backfill.json.
 *
 * Each round, on fresh topics: N generated transactions keyed by card; the demo topology runs live
 * over that backlog (both stages, through the features topic, exactly-once) until every event is
 * scored; then a backfill replays the input range in one process (no intermediate topic). Reported
 * per round: live events/s (start to last score), the backfill's processing events/s (its own
 * measure, from first record to last) and its wall events/s (planning and session start included),
 * and the ratio backfill/live. The claim this checks (src/backfill/README.md): per event, a backfill
 * is not slower than the live stages. It lived in the integration test as an assertion until a CI
 * run on a loaded machine measured 0.82x there; speed claims belong here, measured over rounds.
 *
 * BACKFILL_EVENTS (default 20000), BACKFILL_ROUNDS (default 3).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBackfill } from '../src/backfill/runner';
import { TopicProducer } from '../src/client/topic-producer';
import { prepareFeatureSets } from '../src/features/prepare';
import { createKafka } from '../src/kafka/client';
import { SchemaRegistryClient } from '../src/kafka/schema-registry';
import { Pipeline, provisionTopology } from '../src/stages/pipeline';
import { resolveEndpoints } from '../src/stack/endpoints';
import { repoRoot } from '../src/stack/paths';
import { TransactionGenerator } from '../examples/fraud/generator';
import { fraudSchemas } from '../examples/fraud/schemas';
import { isolatedTopology, uniqueSuffix, waitFor } from '../test/helpers/topology';
import { median } from './src/common';

const EVENTS = Number(process.env.BACKFILL_EVENTS ?? 20000);
const ROUNDS = Number(process.env.BACKFILL_ROUNDS ?? 3);

interface Round {
  round: number;
  events: number;
  liveMs: number;
  liveEventsPerSecond: number;
  backfillProcessingMs: number;
  backfillEventsPerSecond: number;
  backfillWallMs: number;
  backfillWallEventsPerSecond: number;
  ratio: number;
}

async function runRound(round: number): Promise<Round> {
  const endpoints = resolveEndpoints();
  const suffix = `bf${uniqueSuffix()}`;
  const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
  const kafka = createKafka({ clientId: 'bench-backfill', brokers: endpoints.brokers });
  await prepareFeatureSets(topology, endpoints.redisUrl!);
  await provisionTopology(topology, kafka, new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl }));
  const input = topology.spec.stages[0].input.topic;
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: input, schema: 'transaction', schemas: fraudSchemas, key: ((tx: { cardId: string }) => tx.cardId) as never });
  await producer.connect();
  const events = new TransactionGenerator({ seed: 100 + round }).take(EVENTS).map((g) => g.tx);
  for (let i = 0; i < events.length; i += 1000) await producer.send(events.slice(i, i + 1000) as never);
  await producer.disconnect();

  const pipeline = await Pipeline.start({ topology, endpoints });
  const liveStart = Date.now();
  const score = pipeline.stageCounters(topology.spec.stages[topology.spec.stages.length - 1].name);
  try {
    await waitFor(() => score.consumed >= EVENTS, 600000, () => `${score.consumed}/${EVENTS} scored live`);
  } finally {
    await pipeline.stop();
  }
  const liveMs = Date.now() - liveStart;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-backfill-'));
  try {
    const summary = await runBackfill({ topology, endpoints, from: 'earliest', to: 'latest', output: path.join(dir, 'predictions.jsonl'), stateDir: dir, job: `bench-${round}` });
    if (!summary.complete || summary.predictions !== EVENTS) throw new Error(`backfill incomplete: ${JSON.stringify({ complete: summary.complete, predictions: summary.predictions })}`);
    const live = EVENTS / (liveMs / 1000);
    return {
      round,
      events: EVENTS,
      liveMs,
      liveEventsPerSecond: Math.round(live),
      backfillProcessingMs: summary.processing.ms,
      backfillEventsPerSecond: Math.round(summary.processing.eventsPerSecond),
      backfillWallMs: summary.durationMs,
      backfillWallEventsPerSecond: Math.round(EVENTS / (summary.durationMs / 1000)),
      ratio: +(summary.processing.eventsPerSecond / live).toFixed(2),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: topology.spec.topics.map((t) => t.name) }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function main(): Promise<void> {
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' / ');
  const rounds: Round[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const row = await runRound(r);
    rounds.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  const medianOf = (f: (r: Round) => number) => median(rounds.map(f));
  const rows = [
    '| round | events | live events/s | backfill events/s (processing) | backfill events/s (wall) | backfill / live |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rounds.map((r) => `| ${r.round} | ${r.events} | ${r.liveEventsPerSecond} | ${r.backfillEventsPerSecond} | ${r.backfillWallEventsPerSecond} | ${r.ratio} |`),
    `| median | | ${medianOf((r) => r.liveEventsPerSecond)} | ${medianOf((r) => r.backfillEventsPerSecond)} | ${medianOf((r) => r.backfillWallEventsPerSecond)} | ${medianOf((r) => r.ratio)} |`,
  ];
  const table = rows.join('\n');
  process.stdout.write(`\nBackfill vs live over the same backlog (load average at start ${load}):\n\n${table}\n`);
  const out = path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, `${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}-backfill.json`);
  fs.writeFileSync(file, JSON.stringify({ events: EVENTS, rounds, loadAverageAtStart: load, node: process.version, table }, null, 2));
  process.stdout.write(`\nwritten: ${path.relative(repoRoot(), file)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
