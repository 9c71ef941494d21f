import { logLevel, type LogEntry } from 'kafkajs';
import { Registry } from 'prom-client';
import { classifyKafkajsLog, kafkaRetriableCounter, onRetriableBrokerError } from '../../src/kafka/client';

/** Log entries shaped as kafkajs 2.2 writes them (network/connection.js, producer/sendMessages.js, cluster/brokerPool.js, consumer/runner.js). */
const entry = (level: logLevel, namespace: string, message: string, extra: Record<string, unknown> = {}): LogEntry => ({
  namespace,
  level,
  label: logLevel[level],
  log: { timestamp: '2026-11-30T00:00:00.000Z', message, ...extra },
});

const CONCURRENT = 'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing';

describe('kafkajs log mapping', () => {
  it('a retriable broker answer logged at ERROR by the connection goes to debug, typed and counted once', () => {
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response AddPartitionsToTxn(key: 24, version: 1)', { error: CONCURRENT, broker: 'b:9092' }))).toEqual({
      level: 'debug',
      retriable: 'CONCURRENT_TRANSACTIONS',
      count: true,
    });
    // The producer's retry notice restating the same answer: demoted, not counted a second time.
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Producer', `Failed to send messages: ${CONCURRENT}`, { retryCount: 0, retryTime: 212 }))).toEqual({
      level: 'debug',
      retriable: 'CONCURRENT_TRANSACTIONS',
      count: false,
    });
  });

  it.each([
    ['NOT_COORDINATOR_FOR_GROUP', 'This is not the correct coordinator for this group'],
    ['GROUP_LOAD_IN_PROGRESS', 'The coordinator is loading and hence can\'t process requests for this group'],
    ['LEADER_NOT_AVAILABLE', 'There is no leader for this topic-partition as we are in the middle of a leadership election'],
    ['REBALANCE_IN_PROGRESS', 'The group is rebalancing, so a rejoin is needed'],
  ])('%s answers go to debug', (type, message) => {
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response Heartbeat(key: 12, version: 3)', { error: message }))).toEqual({ level: 'debug', retriable: type, count: true });
  });

  it('the consumer re-joining after a rebalance answer is debug, not WARN', () => {
    const d = classifyKafkajsLog(entry(logLevel.WARN, 'Runner', 'The group is rebalancing, re-joining', { groupId: 'g', error: 'The group is rebalancing, so a rejoin is needed' }));
    expect(d.level).toBe('debug');
  });

  it('connection failures kafkajs reconnects from go to debug and are counted as CONNECTION; its retry notices go to debug', () => {
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', { broker: '127.0.0.1:9092' }))).toEqual({
      level: 'debug',
      retriable: 'CONNECTION',
      count: true,
    });
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Connection timeout')).level).toBe('debug');
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'BrokerPool', 'Failed to connect to seed broker, trying another broker from the list: Connection error: x', { retryCount: 2, retryTime: 800 })).level).toBe('debug');
  });

  it('real failures keep their level: fencing, authorization, a too-large record, a consumer crash, unknown errors', () => {
    const fenced = 'Producer attempted an operation with an old epoch';
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response Produce(key: 0, version: 7)', { error: fenced }))).toEqual({ level: 'error', count: false });
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response InitProducerId(key: 22, version: 1)', { error: 'Transactional Id authorization failed' })).level).toBe('error');
    expect(
      classifyKafkajsLog(entry(logLevel.ERROR, 'Producer', 'The request included a message larger than the max message size the server will accept', { retryCount: 0, retryTime: 200 })).level,
    ).toBe('error');
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNumberOfRetriesExceeded: Connection error: x', { groupId: 'g' })).level).toBe('error');
    // A retry notice's text without kafkajs' retry context is not trusted.
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Producer', 'Failed to send messages: something new')).level).toBe('error');
    expect(classifyKafkajsLog(entry(logLevel.WARN, 'RequestQueue', 'Response without match', { clientId: 'c' })).level).toBe('warn');
  });

  it("a CreateTopics answer's aggregate 'Topic creation errors' goes to debug (the admin decides: already-exists is done, anything else is thrown to the caller); other CreateTopics failures keep ERROR", () => {
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response CreateTopics(key: 19, version: 3)', { error: 'Topic creation errors', broker: 'b:9092' }))).toEqual({ level: 'debug', count: false });
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response CreateTopics(key: 19, version: 3)', { error: 'Not authorized to access topics: [Topic authorization failed.]' })).level).toBe('error');
    expect(classifyKafkajsLog(entry(logLevel.ERROR, 'Connection', 'Response Produce(key: 0, version: 7)', { error: 'Topic creation errors' })).level).toBe('error');
  });

  it('INFO and DEBUG entries pass through unchanged and are never counted', () => {
    expect(classifyKafkajsLog(entry(logLevel.DEBUG, 'Connection', 'Response AddPartitionsToTxn(key: 24, version: 1)', { error: CONCURRENT }))).toEqual({ level: 'debug', count: false });
    expect(classifyKafkajsLog(entry(logLevel.INFO, 'Consumer', 'Starting', { groupId: 'g' }))).toEqual({ level: 'info', count: false });
  });

  it('kafkaRetriableCounter counts hook events by type, once per registry', async () => {
    const registry = new Registry();
    const counter = kafkaRetriableCounter(registry);
    expect(kafkaRetriableCounter(registry)).toBe(counter);
    const seen: string[] = [];
    const off = onRetriableBrokerError((e) => seen.push(e.type));
    // Log entries reach the hook through a client's logCreator; drive it as kafkajs would.
    const { createKafka } = await import('../../src/kafka/client');
    const kafka = createKafka({ clientId: 'log-test', brokers: ['127.0.0.1:1'] });
    const log = kafka.logger();
    log.namespace('Connection').error('Response AddPartitionsToTxn(key: 24, version: 1)', { error: CONCURRENT });
    log.namespace('Connection').error('Response AddPartitionsToTxn(key: 24, version: 1)', { error: CONCURRENT });
    log.namespace('Connection').error('Response FindCoordinator(key: 10, version: 2)', { error: 'This is not the correct coordinator for this group' });
    log.namespace('Producer').error(`Failed to send messages: ${CONCURRENT}`, { retryCount: 0, retryTime: 200 });
    off();
    log.namespace('Connection').error('Response AddPartitionsToTxn(key: 24, version: 1)', { error: CONCURRENT });
    expect(seen).toEqual(['CONCURRENT_TRANSACTIONS', 'CONCURRENT_TRANSACTIONS', 'NOT_COORDINATOR_FOR_GROUP']);
    const values = Object.fromEntries((await counter.get()).values.map((v) => [v.labels.type, v.value]));
    // The counter stays subscribed (it counts for the life of the process).
    expect(values).toEqual({ CONCURRENT_TRANSACTIONS: 3, NOT_COORDINATOR_FOR_GROUP: 1 });
  });
});
