import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { artifactPaths } from '../../src/stack/artifacts';
import { kafkaFiles, randomClusterId, renderLog4jProperties, renderServerProperties } from '../../src/stack/kafka-server';
import { findFreePorts } from '../../src/stack/ports';
import { isPidAlive, runCommand, spawnDetached } from '../../src/stack/process';

export interface DedicatedKafkaOptions {
  /** SCRAM-SHA-512 users created at format time; when given, the client listener requires SASL. */
  scramUsers?: Record<string, string>;
}

/**
 * A broker of its own for tests that restart or reconfigure Kafka, so the shared stack is never
 * disturbed. Same artifacts and config renderer as `tributary stack`, storage kept across restarts.
 */
export class DedicatedKafka {
  pid = 0;
  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly sasl?: SASLOptions,
  ) {}

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  static async start(options: DedicatedKafkaOptions = {}): Promise<DedicatedKafka> {
    const [port, controllerPort] = await findFreePorts(2);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-'));
    const { kafkaClasspath } = artifactPaths();
    const users = Object.entries(options.scramUsers ?? {});
    const extraProperties: Record<string, string> = {};
    const formatArgs: string[] = [];
    let sasl: SASLOptions | undefined;
    if (users.length > 0) {
      const [adminUser, adminPassword] = users[0];
      Object.assign(extraProperties, {
        listeners: `SASL_PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
        'advertised.listeners': `SASL_PLAINTEXT://127.0.0.1:${port}`,
        'listener.security.protocol.map': 'SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
        'inter.broker.listener.name': 'SASL_PLAINTEXT',
        'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
        'sasl.mechanism.inter.broker.protocol': 'SCRAM-SHA-512',
        'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config': `org.apache.kafka.common.security.scram.ScramLoginModule required username="${adminUser}" password="${adminPassword}";`,
      });
      for (const [name, password] of users) formatArgs.push('--add-scram', `SCRAM-SHA-512=[name=${name},password=${password}]`);
      sasl = { mechanism: 'scram-sha-512', username: adminUser, password: adminPassword };
    }
    const broker = new DedicatedKafka(dataDir, port, sasl);
    const files = kafkaFiles(dataDir);
    fs.mkdirSync(files.logDirs, { recursive: true });
    fs.writeFileSync(files.serverProperties, renderServerProperties({ classpath: kafkaClasspath, dataDir, port, controllerPort, extraProperties }));
    fs.writeFileSync(files.log4jProperties, renderLog4jProperties(files.logFile));
    const format = await runCommand('java', ['-Xmx256m', `-Dlog4j.configuration=file:${files.log4jProperties}`, '-cp', kafkaClasspath, 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', files.serverProperties, ...formatArgs], { cwd: dataDir, timeoutMs: 120000 });
    if (format.code !== 0) throw new Error(`format failed: ${format.output}`);
    await broker.launch();
    return broker;
  }

  /** Starts the broker process on the existing storage and waits until it answers. */
  async launch(): Promise<void> {
    const { kafkaClasspath } = artifactPaths();
    const files = kafkaFiles(this.dataDir);
    const proc = await spawnDetached('java', ['-Xmx512m', `-Dlog4j.configuration=file:${files.log4jProperties}`, '-cp', kafkaClasspath, 'kafka.Kafka', files.serverProperties], { cwd: this.dataDir, logFile: files.logFile });
    this.pid = proc.pid;
    const deadline = Date.now() + 90000;
    for (;;) {
      if (await this.answers()) return;
      if (!isPidAlive(this.pid) || Date.now() > deadline) throw new Error(`dedicated broker did not start; see ${files.logFile}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async answers(): Promise<boolean> {
    const admin = new Kafka({ clientId: 'dedicated-probe', brokers: this.brokers, sasl: this.sasl, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 }).admin();
    try {
      await admin.connect();
      await admin.listTopics();
      return true;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** SIGTERM (controlled shutdown) and wait for the process to go. */
  async stop(): Promise<void> {
    if (!this.pid || !isPidAlive(this.pid)) return;
    process.kill(this.pid, 'SIGTERM');
    const deadline = Date.now() + 30000;
    while (isPidAlive(this.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (isPidAlive(this.pid)) process.kill(this.pid, 'SIGKILL');
  }

  async restart(downMs: number): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
