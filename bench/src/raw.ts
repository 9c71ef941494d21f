/** Raw limits: Kafka's own perf tools, redis-benchmark and pipelined ioredis reads. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import Redis from 'ioredis';
import type { ProcSampler } from './common';
import { round } from './common';

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command as a child of the bench (tracked by the sampler under `name` while it runs). */
export function runCmd(cmd: string, args: string[], sampler?: ProcSampler, name?: string, timeoutMs = 120_000): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (sampler && name && child.pid) sampler.track(name, child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (sampler && name) sampler.untrack(name);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

export interface KafkaPerf {
  producer: { records: number; recordsPerSecond: number; mbPerSecond: number; avgLatencyMs: number; p50Ms: number; p99Ms: number; raw: string };
  consumer: { records: number; recordsPerSecond: number; fetchRecordsPerSecond: number; mbPerSecond: number; raw: string };
}

/** ProducerPerformance (acks=all) then ConsumerPerformance on a fresh topic with `partitions` partitions. */
export async function kafkaPerf(opts: { classpath: string; brokers: string; topic: string; records: number; recordSize: number; group: string; sampler: ProcSampler }): Promise<KafkaPerf> {
  const java = ['-Xmx512m', '-Dlog4j.configuration=file:/dev/null', '-cp', opts.classpath];
  const prod = await runCmd('java', [...java, 'org.apache.kafka.tools.ProducerPerformance', '--topic', opts.topic, '--num-records', String(opts.records), '--record-size', String(opts.recordSize), '--throughput', '-1', '--producer-props', `bootstrap.servers=${opts.brokers}`, 'acks=all'], opts.sampler, 'kafka-producer-perf (java)');
  // "200000 records sent, 151515.2 records/sec (14.45 MB/sec), 123.4 ms avg latency, 456.0 ms max latency, 100 ms 50th, 200 ms 95th, 300 ms 99th, 400 ms 99.9th."
  const line = prod.stdout.trim().split('\n').filter((l) => l.includes('records sent')).pop() ?? '';
  const m = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency.*?(\d+) ms 50th.*?(\d+) ms 99th/.exec(line);
  if (!m) throw new Error(`ProducerPerformance output not understood (exit ${prod.code}):\n${prod.stdout.slice(-2000)}\n${prod.stderr.slice(-2000)}`);
  const cons = await runCmd('java', [...java, 'org.apache.kafka.tools.ConsumerPerformance', '--bootstrap-server', opts.brokers, '--topic', opts.topic, '--messages', String(opts.records), '--group', opts.group, '--timeout', '30000'], opts.sampler, 'kafka-consumer-perf (java)');
  // header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const lines = cons.stdout.trim().split('\n');
  const hi = lines.findIndex((l) => l.includes('nMsg.sec'));
  if (hi < 0 || !lines[hi + 1]) throw new Error(`ConsumerPerformance output not understood (exit ${cons.code}):\n${cons.stdout.slice(-2000)}\n${cons.stderr.slice(-2000)}`);
  const header = lines[hi].split(',').map((s) => s.trim());
  const values = lines[hi + 1].split(',').map((s) => s.trim());
  const col = (name: string) => Number(values[header.indexOf(name)]);
  return {
    producer: { records: Number(m[1]), recordsPerSecond: Number(m[2]), mbPerSecond: Number(m[3]), avgLatencyMs: Number(m[4]), p50Ms: Number(m[5]), p99Ms: Number(m[6]), raw: line },
    consumer: { records: col('data.consumed.in.nMsg'), recordsPerSecond: col('nMsg.sec'), fetchRecordsPerSecond: col('fetch.nMsg.sec'), mbPerSecond: col('MB.sec'), raw: `${lines[hi]}\n${lines[hi + 1]}` },
  };
}

export const cardKey = (cardId: string) => `bench:card:${cardId}`;
/** Mirror keyspace for redis-benchmark's __rand_int__ (12-digit zero-padded integers). */
const rbKey = (i: number) => `bench:rb:${String(i).padStart(12, '0')}`;
const cardId = (i: number) => `card-${String(i).padStart(6, '0')}`;

/** One hash per card (the generator's card ids), and the same values under the redis-benchmark mirror keys. */
export async function preloadRedis(url: string, cards: number): Promise<void> {
  const redis = new Redis(url);
  try {
    for (let start = 0; start < cards; start += 1000) {
      const pipe = redis.pipeline();
      for (let i = start; i < Math.min(cards, start + 1000); i++) {
        const fields = { txCount30d: String(10 + (i % 97)), avgAmountUsd: (20 + (i % 311) / 3).toFixed(2), lastCountry: ['US', 'GB', 'DE', 'FR', 'BR'][i % 5], riskTier: String(i % 4) };
        pipe.hset(cardKey(cardId(i)), fields);
        pipe.hset(rbKey(i), fields);
      }
      await pipe.exec();
    }
  } finally {
    redis.disconnect();
  }
}

export interface RedisRaw {
  ioredisPipelinedReadsPerSecond: number;
  ioredisSequentialReadsPerSecond: number;
  redisBenchmark?: { pipelined16: number; unpipelined1Client: number; raw: string } | { error: string };
}

export async function redisRaw(url: string, cards: number, seconds: number, sampler: ProcSampler): Promise<RedisRaw> {
  const redis = new Redis(url);
  const rand = () => cardKey(cardId(Math.floor(Math.random() * cards)));
  const timed = async (fn: () => Promise<number>) => {
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < seconds * 1000) n += await fn();
    return round(n / ((Date.now() - started) / 1000), 0);
  };
  let pipelined: number;
  let sequential: number;
  try {
    pipelined = await timed(async () => {
      const pipe = redis.pipeline();
      for (let i = 0; i < 500; i++) pipe.hgetall(rand());
      await pipe.exec();
      return 500;
    });
    sequential = await timed(async () => {
      await redis.hgetall(rand());
      return 1;
    });
  } finally {
    redis.disconnect();
  }
  const u = new URL(url);
  let rb: RedisRaw['redisBenchmark'];
  if (fs.existsSync('/usr/bin/redis-benchmark') || process.env.PATH?.split(':').some((d) => fs.existsSync(`${d}/redis-benchmark`))) {
    const base = ['-h', u.hostname, '-p', u.port || '6379', '-r', String(cards), '-q'];
    const parse = (out: string) => Number(/([\d.]+) requests per second/.exec(out)?.[1] ?? NaN);
    const a = await runCmd('redis-benchmark', [...base, '-n', String(Math.round(100_000 * seconds)), '-c', '50', '-P', '16', 'HGETALL', 'bench:rb:__rand_int__'], sampler, 'redis-benchmark');
    const b = await runCmd('redis-benchmark', [...base, '-n', String(Math.round(10_000 * seconds)), '-c', '1', '-P', '1', 'HGETALL', 'bench:rb:__rand_int__'], sampler, 'redis-benchmark');
    rb = { pipelined16: parse(a.stdout), unpipelined1Client: parse(b.stdout), raw: (a.stdout + b.stdout).replace(/\r/g, '\n').trim().split('\n').filter((l) => l.includes('per second')).join('\n') };
  } else {
    rb = { error: 'redis-benchmark not on PATH (Debian: apt-get install redis-tools)' };
  }
  return { ioredisPipelinedReadsPerSecond: pipelined, ioredisSequentialReadsPerSecond: sequential, redisBenchmark: rb };
}
