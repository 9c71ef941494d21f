#!/usr/bin/env node
/*
 * Fixes kafkajs 2.2.4's read_committed filter of aborted transactions
 * (src/consumer/filterAbortedMessages.js), which delivered records of aborted transactions to
 * read_committed consumers after crashes of pipelines with several transactional producers per
 * output partition. Two defects, both found by the fault tests (Kafka's own console consumer saw
 * the committed records only, kafkajs saw more):
 *
 * 1. It activates at most one aborted transaction per record (`if`); it must activate every one
 *    whose first offset is behind the record (`while`), as Kafka's own consumer does: a fetch that
 *    starts after several aborted transactions began (several producers aborting on one partition).
 * 2. It walks the fetch's aborted-transaction list in the order the broker sends it and assumes
 *    that is first-offset order. The broker sends it in the order the transactions ENDED (the
 *    partition's transaction index is appended when an abort marker is written), so a transaction
 *    that began earlier but was aborted later sits behind one that began later: its records before
 *    the other's first offset were delivered. Kafka's consumer keeps the list in a priority queue by
 *    first offset; the patch sorts it by first offset.
 *
 * It also adds what exactly-once v2 (KIP-447, `transactions: shared`, src/engine/shared-transactions.ts)
 * needs and kafkajs 2.2.4 lacks, without changing any request kafkajs already sends:
 *
 * 3. TxnOffsetCommit v3 (the consumer's generation, member id and instance id, so the group
 *    coordinator refuses a zombie's offsets): used only when `transaction.sendOffsets` is given
 *    `consumerGroupMetadata`; otherwise v0/v1 as before.
 * 4. OffsetFetch v7 with require_stable (UNSTABLE_OFFSET_COMMIT while a transaction holding the
 *    group's offsets is pending): used only when `admin.fetchOffsets` is given `requireStable: true`.
 * 5. The consumer's generationId in the GROUP_JOIN event's payload (memberId is there already).
 *
 * And one cost fix:
 *
 * 6. Coordinators are remembered (scripts/kafkajs-eosv2/coordinator-cache.js) instead of being
 *    looked up with a FindCoordinator request before every transactional or group request — 3-6
 *    round trips per exactly-once commit — and forgotten when a broker answers that coordination
 *    moved, as Kafka's Java client does.
 *
 * And some for the CPU of every produced record:
 *
 * 7. The protocol Encoder (every request, every produced record and header) allocates its buffers
 *    unfilled from Node's pool and writes varints in place (kafkajs zero-filled a fresh 512-byte
 *    buffer per record and header and built an array and a Buffer per varint); the bytes written
 *    are the same.
 * 8. A send's messages are grouped per partition by appending (kafkajs copied the partition's
 *    array for every message: quadratic in the records of one transaction's send).
 * 9. A produced record and its headers are encoded into one buffer (kafkajs made an encoder, an
 *    object and an array per header and copied every message object); the same bytes. Its sizes
 *    and its writing are exported for patch 14, which writes a request's records into one buffer.
 * 11. A record batch's CRC32-C is computed eight bytes per step (scripts/kafkajs-eosv2/crc32c-sliced.js)
 *    instead of one; the same checksums.
 * 12. A fetched record's timestamp and offset are summed in Number arithmetic (kafkajs parsed the
 *    batch's first timestamp and offset into BigInt Longs for every record and read each varlong
 *    byte through Long objects) and its headers folded into one object
 *    (scripts/kafkajs-eosv2/record-decoder-fast.js); values beyond 2^53 take kafkajs' own path.
 * 13. A fetch's records before the fetched offset are found as the prefix they are (offset order)
 *    instead of parsing every record's offset into a BigInt Long to compare it.
 * 14. A produce request (records not compressed) is encoded into one buffer sized once, its frame
 *    (size, api key, correlation id, client id) written into room reserved in front
 *    (scripts/kafkajs-eosv2/produce-one-buffer.js); kafkajs nested an encoder per record, batch,
 *    partition, topic and request and copied every byte about nine times. The same bytes.
 *
 * And fewer serial round trips per transaction:
 *
 * 10. A transaction can add a group's offsets partition on its own (`transaction.addOffsets`:
 *     AddOffsetsToTxn), commit offsets without adding it again (`sendOffsets({
 *     offsetsPartitionAdded: true })`), and learn when its next send's AddPartitionsToTxn is done
 *     (`nextSendPartitionsAdded`). The engine adds the groups' offsets first, then sends its
 *     records and its TxnOffsetCommits concurrently once the outputs' partitions are in — kafkajs
 *     sends Produce and TxnOffsetCommit one after the other. kafkajs' own requests are unchanged
 *     when these are not used. (A client cannot put __consumer_offsets into AddPartitionsToTxn:
 *     the broker answers TOPIC_AUTHORIZATION_FAILED for internal topics.)
 *
 * The new requests are files of scripts/kafkajs-eosv2/, copied into kafkajs' protocol folder.
 * Run by `npm ci` (the package's prepare script) and idempotent; fails loudly if kafkajs changed.
 * Tested by test/unit/kafkajs-aborted-filter.test.ts, test/unit/kafkajs-eosv2.test.ts,
 * test/integration/kafkajs-coordinator-cache.test.ts, test/unit/kafkajs-encoder.test.ts,
 * test/unit/kafkajs-record-decoder.test.ts,
 * test/unit/kafkajs-produce-grouping.test.ts, test/unit/kafkajs-produce-one-buffer.test.ts.
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.dirname(require.resolve('kafkajs/package.json'));
const EXPECTED_VERSION = '2.2.4';
const version = require(path.join(root, 'package.json')).version;
if (version !== EXPECTED_VERSION) {
  console.error(`patch-kafkajs: kafkajs ${version} found, the patches are written against ${EXPECTED_VERSION}; check each one against the new version before changing EXPECTED_VERSION`);
  process.exit(1);
}
const MARK = '// patched by tributary scripts/patch-kafkajs.js';

const files = {
  'src/consumer/filterAbortedMessages.js': [
    {
      what: 'activate every aborted transaction behind a record',
      before: `    if (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) {`,
      after: `    while (
      remainingAbortedTransactions.length &&
      Long.fromValue(message.offset).gte(remainingAbortedTransactions[0].firstOffset)
    ) { // patched by tributary scripts/patch-kafkajs.js`,
    },
    {
      what: 'walk aborted transactions in first-offset order',
      before: `  const remainingAbortedTransactions = [...abortedTransactions]
`,
      after: `  const remainingAbortedTransactions = [...abortedTransactions].sort((a, b) =>
    Long.fromValue(a.firstOffset).compare(Long.fromValue(b.firstOffset))
  ) // patched by tributary scripts/patch-kafkajs.js: the broker lists them in abort order
`,
    },
  ],
  'src/broker/index.js': [
    {
      what: 'TxnOffsetCommit v3 when the consumer group metadata is given',
      before: `  async txnOffsetCommit({ transactionalId, groupId, producerId, producerEpoch, topics }) {
    const txnOffsetCommit`,
      after: `  async txnOffsetCommit({ transactionalId, groupId, producerId, producerEpoch, topics, consumerGroupMetadata }) {
    if (consumerGroupMetadata) { ${MARK}: KIP-447 (v3)
      const v = this.versions[apiKeys.TxnOffsetCommit]
      if (!v || v.maxVersion < 3) throw new KafkaJSNonRetriableError('The broker does not support TxnOffsetCommit v3 (Kafka 2.5+), needed by shared transactions')
      const { generationId, memberId, groupInstanceId = null } = consumerGroupMetadata
      return await this[PRIVATE.SEND_REQUEST]({
        request: require('../protocol/requests/txnOffsetCommit/v3/request')({ transactionalId, groupId, producerId, producerEpoch, generationId, memberId, groupInstanceId, topics }),
        response: require('../protocol/requests/txnOffsetCommit/v3/response'),
      })
    }
    const txnOffsetCommit`,
    },
    {
      what: 'coordination errors empty the coordinator cache',
      before: `      return await this.connectionPool.send(protocolRequest)
    } catch (e) {`,
      after: `      return await this.connectionPool.send(protocolRequest)
    } catch (e) {
      require('../cluster/coordinatorCache').observe(e) ${MARK}`,
    },
    {
      what: 'OffsetFetch v7 with require_stable when asked',
      before: `  async offsetFetch({ groupId, topics }) {
    const offsetFetch`,
      after: `  async offsetFetch({ groupId, topics, requireStable }) {
    if (requireStable) { ${MARK}: KIP-447 (v7)
      const v = this.versions[apiKeys.OffsetFetch]
      if (!v || v.maxVersion < 7) throw new KafkaJSNonRetriableError('The broker does not support OffsetFetch v7 (Kafka 2.5+), needed by shared transactions')
      return await this[PRIVATE.SEND_REQUEST]({
        request: require('../protocol/requests/offsetFetch/v7/request')({ groupId, topics, requireStable: true }),
        response: require('../protocol/requests/offsetFetch/v7/response'),
      })
    }
    const offsetFetch`,
    },
  ],
  'src/producer/eosManager/index.js': [
    {
      what: 'sendOffsets passes the consumer group metadata on',
      before: `      async sendOffsets({ consumerGroupId, topics }) {`,
      after: `      async sendOffsets({ consumerGroupId, topics, consumerGroupMetadata, offsetsPartitionAdded }) { ${MARK}`,
    },
    {
      what: 'TxnOffsetCommit carries the consumer group metadata',
      before: `              groupId: consumerGroupId,
              topics,
            })`,
      after: `              groupId: consumerGroupId,
              topics,
              consumerGroupMetadata, ${MARK}
            })`,
    },
    {
      what: 'a send\'s AddPartitionsToTxn can be waited for',
      before: `  let hasOffsetsAddedToTransaction = false

  const stateMachine = createStateMachine({ logger })
  stateMachine.on('transition', ({ to }) => {
    if (to === STATES.READY) {
      transactionTopicPartitions = {}
      hasOffsetsAddedToTransaction = false
    }
  })`,
      after: `  let hasOffsetsAddedToTransaction = false

  /** Who waits for the next AddPartitionsToTxn ${MARK} */
  let partitionsAddedWaiter = null

  const stateMachine = createStateMachine({ logger })
  stateMachine.on('transition', ({ to }) => {
    if (to === STATES.READY) {
      transactionTopicPartitions = {}
      hasOffsetsAddedToTransaction = false
      if (partitionsAddedWaiter) partitionsAddedWaiter.reject(new KafkaJSNonRetriableError('The transaction ended before a send added its partitions'))
      partitionsAddedWaiter = null
    }
  })`,
    },
    {
      what: 'AddPartitionsToTxn tells who waits for it',
      before: `        if (topics.length) {
          const broker = await findTransactionCoordinator()
          await broker.addPartitionsToTxn({ transactionalId, producerId, producerEpoch, topics })
        }

        topics.forEach(({ topic, partitions }) => {
          partitions.forEach(partition => {
            transactionTopicPartitions[topic][partition] = true
          })
        })`,
      after: `        const waiter = partitionsAddedWaiter ${MARK}
        partitionsAddedWaiter = null
        if (topics.length) {
          try {
            const broker = await findTransactionCoordinator()
            await broker.addPartitionsToTxn({ transactionalId, producerId, producerEpoch, topics })
          } catch (e) {
            if (waiter) waiter.reject(e)
            throw e
          }
        }

        topics.forEach(({ topic, partitions }) => {
          partitions.forEach(partition => {
            transactionTopicPartitions[topic][partition] = true
          })
        })
        if (waiter) waiter.resolve()
      },

      /**
       * Resolves once the next AddPartitionsToTxn (the next send's) is done. ${MARK}
       */
      nextPartitionsAdded() {
        transactionalGuard()
        if (partitionsAddedWaiter) throw new KafkaJSNonRetriableError('Someone already waits for the next AddPartitionsToTxn')
        let resolve, reject
        const added = new Promise((res, rej) => {
          resolve = res
          reject = rej
        })
        added.catch(() => {})
        partitionsAddedWaiter = { resolve, reject }
        return added
      },

      /**
       * AddOffsetsToTxn alone: the group's offsets partition joins the transaction ${MARK}
       */
      async addOffsetsToTransaction({ consumerGroupId }) {
        assert(consumerGroupId, 'Missing consumerGroupId')
        const transactionCoordinator = await findTransactionCoordinator()
        await transactionCoordinator.addOffsetsToTxn({ transactionalId, producerId, producerEpoch, groupId: consumerGroupId })
        hasOffsetsAddedToTransaction = true`,
    },
    {
      what: 'sendOffsets can skip AddOffsetsToTxn when the offsets partition was added',
      before: `        assert(consumerGroupId, 'Missing consumerGroupId')
        assert(topics, 'Missing offset topics')

        const transactionCoordinator = await findTransactionCoordinator()

        // Do we need to add offsets if we've already done so for this consumer group?
        await transactionCoordinator.addOffsetsToTxn({
          transactionalId,
          producerId,
          producerEpoch,
          groupId: consumerGroupId,
        })
`,
      after: `        assert(consumerGroupId, 'Missing consumerGroupId')
        assert(topics, 'Missing offset topics')

        // Do we need to add offsets if we've already done so for this consumer group? ${MARK}
        if (!offsetsPartitionAdded) await this.addOffsetsToTransaction({ consumerGroupId })
`,
    },
    {
      what: 'the new methods are guarded',
      before: `      addPartitionsToTransaction: { legalStates: [STATES.TRANSACTING] },`,
      after: `      addPartitionsToTransaction: { legalStates: [STATES.TRANSACTING] },
      nextPartitionsAdded: { legalStates: [STATES.TRANSACTING], async: false }, ${MARK}
      addOffsetsToTransaction: { legalStates: [STATES.TRANSACTING] }, ${MARK}`,
    },
  ],
  'src/producer/index.js': [
    {
      what: 'a transaction can add offsets alone and wait for its next send\'s partitions',
      before: `    return {
      sendBatch: transactionGuard(sendBatchTxn),`,
      after: `    return {
      nextSendPartitionsAdded: transactionGuard(async () => transactionalEosManager.nextPartitionsAdded()), ${MARK}
      addOffsets: transactionGuard(({ consumerGroupId }) => transactionalEosManager.addOffsetsToTransaction({ consumerGroupId })), ${MARK}
      sendBatch: transactionGuard(sendBatchTxn),`,
    },
    {
      what: 'transaction.sendOffsets passes the consumer group metadata on',
      before: `      sendOffsets: transactionGuard(async ({ consumerGroupId, topics }) => {
        await transactionalEosManager.sendOffsets({ consumerGroupId, topics })`,
      after: `      sendOffsets: transactionGuard(async ({ consumerGroupId, topics, consumerGroupMetadata, offsetsPartitionAdded }) => {
        await transactionalEosManager.sendOffsets({ consumerGroupId, topics, consumerGroupMetadata, offsetsPartitionAdded }) ${MARK}`,
    },
  ],
  'src/admin/index.js': [
    {
      what: 'fetchOffsets can ask for stable offsets',
      before: `  const fetchOffsets = async ({ groupId, topics, resolveOffsets = false }) => {`,
      after: `  const fetchOffsets = async ({ groupId, topics, resolveOffsets = false, requireStable = false }) => { ${MARK}`,
    },
    {
      what: 'fetchOffsets passes requireStable to OffsetFetch',
      before: `    let { responses: consumerOffsets } = await coordinator.offsetFetch({
      groupId,
      topics: topicsToFetch,
    })`,
      after: `    let { responses: consumerOffsets } = await coordinator.offsetFetch({
      groupId,
      topics: topicsToFetch,
      requireStable, ${MARK}
    })`,
    },
    {
      what: 'fetchOffsets marks partitions whose offset is held by a pending transaction',
      before: `      const completePartitions = partitions.map(({ partition, offset, metadata }) => ({
        partition,
        offset,
        metadata: metadata || null,
      }))`,
      after: `      const completePartitions = partitions.map(({ partition, offset, metadata, errorCode }) => ({
        partition,
        offset,
        metadata: metadata || null,
        ...(requireStable ? { unstable: errorCode === 88 } : {}), ${MARK}
      }))`,
    },
  ],
  'src/cluster/index.js': [
    {
      what: 'remember coordinators instead of a FindCoordinator request per use',
      before: `  async findGroupCoordinator({ groupId, coordinatorType = COORDINATOR_TYPES.GROUP }) {
    return this.retrier(async (bail, retryCount, retryTime) => {
      try {
        const { coordinator } = await this.findGroupCoordinatorMetadata({
          groupId,
          coordinatorType,
        })
        return await this.findBroker({ nodeId: coordinator.nodeId })`,
      after: `  async findGroupCoordinator({ groupId, coordinatorType = COORDINATOR_TYPES.GROUP }) {
    const coordinators = this.coordinators || (this.coordinators = require('./coordinatorCache')) ${MARK}
    if (!this.coordinatorCache) this.coordinatorCache = coordinators.create()
    const known = coordinators.get(this.coordinatorCache, groupId, coordinatorType)
    if (known !== undefined) {
      try {
        return await this.findBroker({ nodeId: known })
      } catch (e) {
        coordinators.delete(this.coordinatorCache, groupId, coordinatorType)
      }
    }
    return this.retrier(async (bail, retryCount, retryTime) => {
      try {
        const { coordinator } = await this.findGroupCoordinatorMetadata({
          groupId,
          coordinatorType,
        })
        const found = await this.findBroker({ nodeId: coordinator.nodeId })
        coordinators.set(this.coordinatorCache, groupId, coordinatorType, coordinator.nodeId)
        return found`,
    },
  ],
  'src/protocol/encoder.js': [
    {
      what: 'encoders start from pooled, unfilled buffers',
      before: `    this.buf = Buffer.alloc(Encoder.nextPowerOfTwo(initialSize))
    this.offset = 0`,
      after: `    // ${MARK}: only bytes [0, offset) are ever read (the buffer getter
    // slices them, growing copies them), so zero-filling was wasted; small ones come from Node's pool
    this.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize))
    this.offset = 0`,
    },
    {
      what: 'a grown encoder buffer is not zero-filled either',
      before: `      const newBuffer = Buffer.alloc(newLength)
      this.buf.copy(newBuffer, 0, 0, this.offset)`,
      after: `      const newBuffer = Buffer.allocUnsafe(newLength) ${MARK}
      this.buf.copy(newBuffer, 0, 0, this.offset)`,
    },
    {
      what: 'varints written in place',
      before: `  writeUVarInt(value) {
    const byteArray = []
    while ((value & UNSIGNED_INT32_MAX_NUMBER) !== 0) {
      byteArray.push((value & OTHER_BITS) | MOST_SIGNIFICANT_BIT)
      value >>>= 7
    }
    byteArray.push(value & OTHER_BITS)
    this.writeBufferInternal(Buffer.from(byteArray))
    return this
  }`,
      after: `  writeUVarInt(value) {
    // ${MARK}: the same bytes, without an array and a Buffer per varint
    this.ensureAvailable(5)
    while ((value & UNSIGNED_INT32_MAX_NUMBER) !== 0) {
      this.buf[this.offset++] = (value & OTHER_BITS) | MOST_SIGNIFICANT_BIT
      value >>>= 7
    }
    this.buf[this.offset++] = value & OTHER_BITS
    return this
  }`,
    },
    {
      what: 'sizes of small varlongs without Long arithmetic',
      before: `  static sizeOfVarLong(value) {
    let longValue = Encoder.encodeZigZag64(value)`,
      after: `  static sizeOfVarLong(value) {
    if (typeof value === 'number' && value > -0x40000000 && value < 0x40000000 && Number.isInteger(value)) {
      return Encoder.sizeOfVarInt(value) ${MARK}: as writeVarLong
    }
    let longValue = Encoder.encodeZigZag64(value)`,
    },
    {
      what: 'small varlongs written as varints',
      before: `  writeVarLong(value) {
    const byteArray = []`,
      after: `  writeVarLong(value) {
    // ${MARK}: below 2^30 in magnitude the 64-bit zigzag varint has the
    // same bytes as the 32-bit one (record timestamp deltas), without Long arithmetic
    if (typeof value === 'number' && value > -0x40000000 && value < 0x40000000 && Number.isInteger(value)) {
      return this.writeVarInt(value)
    }
    const byteArray = []`,
    },
  ],
  'src/producer/groupMessagesPerPartition.js': [
    {
      what: 'messages grouped per partition in linear time',
      before: `  return messages.reduce((result, message) => {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition] || []
    return Object.assign(result, { [partition]: [...current, message] })
  }, {})`,
      after: `  // ${MARK}: kafkajs copied the partition's array for every message
  // (quadratic in the messages of a send); the same groups, in the same order, by appending
  const result = {}
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition]
    if (current) current.push(message)
    else result[partition] = [message]
  }
  return result`,
    },
  ],
  'src/protocol/recordBatch/record/v0/index.js': [
    {
      what: 'a record and its headers encoded into one buffer',
      before: `module.exports = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
  const headersArray = Object.keys(headers).flatMap(headerKey =>
    !Array.isArray(headers[headerKey])
      ? [{ key: headerKey, value: headers[headerKey] }]
      : headers[headerKey].map(headerValue => ({ key: headerKey, value: headerValue }))
  )
`,
      after: `// ${MARK}: the same bytes as below (Header v0 = varint-string key,
// varint-bytes value), written into the record's own encoder instead of an encoder, an object
// and an array per header. Its sizes and its writing are exported for produce/v3/encodeOneBuffer.js,
// which writes every record of a request into one buffer (patch 14); positional arguments, so
// that a request's records cost no object each.

/** How many headers a record carries (an array value is one header per element). */
const headerCountOf = (headers = {}) => {
  let count = 0
  for (const headerKey of Object.keys(headers)) {
    const v = headers[headerKey]
    count += Array.isArray(v) ? v.length : 1
  }
  return count
}

const sizeOfHeaderValue = one => {
  const valueSize = Buffer.byteLength(one) // throws on a missing value, as kafkajs did
  return Encoder.sizeOfVarInt(valueSize) + valueSize
}

/** The byte size of a record's body: what follows its length varint. */
const bodySizeOf = (key, value, headers = {}, offsetDelta, timestampDelta, headerCount) => {
  let headersSize = 0
  for (const headerKey of Object.keys(headers)) {
    const v = headers[headerKey]
    const keySize = Buffer.byteLength(headerKey)
    const keyBytes = Encoder.sizeOfVarInt(keySize) + keySize
    if (Array.isArray(v)) {
      for (const one of v) headersSize += keyBytes + sizeOfHeaderValue(one)
    } else {
      headersSize += keyBytes + sizeOfHeaderValue(v)
    }
  }
  return (
    1 +
    Encoder.sizeOfVarLong(timestampDelta) +
    Encoder.sizeOfVarInt(offsetDelta) +
    Encoder.sizeOfVarIntBytes(key) +
    Encoder.sizeOfVarIntBytes(value) +
    Encoder.sizeOfVarInt(headerCount) +
    headersSize
  )
}

/** Writes the record (its length varint first) at the encoder's offset. */
const writeRecord = (encoder, key, value, headers = {}, offsetDelta, timestampDelta, bodySize, headerCount) => {
  encoder
    .writeVarInt(bodySize)
    .writeInt8(0)
    .writeVarLong(timestampDelta)
    .writeVarInt(offsetDelta)
    .writeVarIntBytes(key)
    .writeVarIntBytes(value)
    .writeVarInt(headerCount)
  for (const headerKey of Object.keys(headers)) {
    const v = headers[headerKey]
    if (Array.isArray(v)) {
      for (const one of v) encoder.writeVarIntString(headerKey).writeVarIntBytes(one)
    } else {
      encoder.writeVarIntString(headerKey).writeVarIntBytes(v)
    }
  }
  return encoder
}

module.exports = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
  const headerCount = headerCountOf(headers)
  const bodySize = bodySizeOf(key, value, headers, offsetDelta, timestampDelta, headerCount)
  return writeRecord(new Encoder(bodySize + 5), key, value, headers, offsetDelta, timestampDelta, bodySize, headerCount)
}
module.exports.headerCountOf = headerCountOf
module.exports.bodySizeOf = bodySizeOf
module.exports.writeRecord = writeRecord

// kafkajs' original encoding, no longer called: the oracle of test/unit/kafkajs-encoder.test.ts
module.exports.unpatched = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
  const headersArray = Object.keys(headers).flatMap(headerKey =>
    !Array.isArray(headers[headerKey])
      ? [{ key: headerKey, value: headers[headerKey] }]
      : headers[headerKey].map(headerValue => ({ key: headerKey, value: headerValue }))
  )
`,
    },
  ],
  'src/protocol/requests/produce/v3/request.js': [
    {
      what: 'a produce request encoded into one buffer sized once (records not compressed)',
      before: `  encode: async () => {
    const encodeTopic = topicEncoder(compression)`,
      after: `  encode: async frame => { ${MARK} (14): one buffer, the frame's room in front
    if (compression === Types.None && !(frame && frame.nested)) {
      return encodeOneBuffer(
        { acks, timeout, transactionalId, producerId, producerEpoch, topicData },
        frame && frame.headroom ? frame.headroom : 0
      )
    }
    // kafkajs' nested encoders: compressed records, and the oracle of the tests ({ nested: true })
    const encodeTopic = topicEncoder(compression)`,
    },
    {
      what: 'the one-buffer produce encoder loaded with the request',
      before: `const { RecordBatch } = require('../../../recordBatch/v0')
`,
      after: `const { RecordBatch } = require('../../../recordBatch/v0')
const encodeOneBuffer = require('./encodeOneBuffer') ${MARK} (14)
`,
    },
    {
      what: 'records built without copying each message object',
      before: `    Record({
      ...message,
      offsetDelta: i,`,
      after: `    Record({ ${MARK}: Record reads these fields only
      key: message.key,
      value: message.value,
      headers: message.headers,
      offsetDelta: i,`,
    },
  ],
  'src/protocol/request.js': [
    {
      what: 'a request frame written into the room its payload reserved',
      before: `module.exports = async ({ correlationId, clientId, request: { apiKey, apiVersion, encode } }) => {
  const payload = await encode()
`,
      after: `module.exports = async ({ correlationId, clientId, request: { apiKey, apiVersion, encode } }) => {
  // ${MARK.slice(3)} (14): a payload that reserved room in front
  // for the frame (a produce request) gets it written in place instead of being copied twice
  const clientIdBytes = clientId == null ? 0 : Buffer.byteLength(clientId, 'utf8')
  const headroom = 4 + 2 + 2 + 4 + 2 + clientIdBytes
  const payload = await encode({ headroom })
  if (payload.frameHeadroom === headroom) {
    const buf = payload.buf
    buf.writeInt32BE(payload.offset - 4, 0)
    buf.writeInt16BE(apiKey, 4)
    buf.writeInt16BE(apiVersion, 6)
    buf.writeInt32BE(correlationId, 8)
    buf.writeInt16BE(clientId == null ? -1 : clientIdBytes, 12)
    if (clientIdBytes > 0) buf.write(clientId, 14, clientIdBytes, 'utf8')
    return payload
  }
`,
    },
  ],
  'src/consumer/consumerGroup.js': [
    {
      what: 'GROUP_JOIN carries the generation',
      before: `          memberId: this.memberId,
          leaderId: this.leaderId,`,
      after: `          memberId: this.memberId,
          generationId: this.generationId, ${MARK}
          leaderId: this.leaderId,`,
    },
  ],
  'src/protocol/recordBatch/record/v0/decoder.js': [
    {
      what: 'fetched records decoded without BigInt (kept: the original, for fallback and tests)',
      before: `module.exports = (decoder, batchContext = {}) => {`,
      after: `const unpatched = (decoder, batchContext = {}) => { ${MARK}: fallback of decoderFast.js`,
    },
    {
      what: 'fetched records decoded without BigInt (export)',
      before: `    isControlRecord: isControlBatch,
    batchContext,
  }
}
`,
      after: `    isControlRecord: isControlBatch,
    batchContext,
  }
}

module.exports = require('./decoderFast')(unpatched) ${MARK}: Number arithmetic where safe
module.exports.unpatched = unpatched
`,
    },
  ],
  'src/consumer/batch.js': [
    {
      what: 'records before the fetched offset found by a scan of the head, not a BigInt parse per record',
      before: `    this.messagesWithinOffset = this.rawMessages.filter(message =>
      Long.fromValue(message.offset).gte(longFetchedOffset)
    )`,
      after: `    // ${MARK.slice(3)}: a partition's records come in offset order, so those
    // before the fetched offset (the head of a record batch that began earlier) are a prefix
    let first = 0
    while (
      first < this.rawMessages.length &&
      !Long.fromValue(this.rawMessages[first].offset).gte(longFetchedOffset)
    ) {
      first++
    }
    this.messagesWithinOffset = this.rawMessages.slice(first)`,
    },
  ],
  'src/protocol/recordBatch/crc32C/crc32C.js': [
    {
      what: 'CRC32-C eight bytes per step',
      before: `module.exports = crc32C
`,
      after: `module.exports = require('./crc32CSliced') ${MARK}: 8 bytes per step, the same results
`,
    },
  ],
};

const copies = {
  'crc32c-sliced.js': 'src/protocol/recordBatch/crc32C/crc32CSliced.js',
  'record-decoder-fast.js': 'src/protocol/recordBatch/record/v0/decoderFast.js',
  'txnOffsetCommit-v3-request.js': 'src/protocol/requests/txnOffsetCommit/v3/request.js',
  'txnOffsetCommit-v3-response.js': 'src/protocol/requests/txnOffsetCommit/v3/response.js',
  'offsetFetch-v7-request.js': 'src/protocol/requests/offsetFetch/v7/request.js',
  'offsetFetch-v7-response.js': 'src/protocol/requests/offsetFetch/v7/response.js',
  'coordinator-cache.js': 'src/cluster/coordinatorCache.js',
  'produce-one-buffer.js': 'src/protocol/requests/produce/v3/encodeOneBuffer.js',
};

const applied = [];
for (const [rel, patches] of Object.entries(files)) {
  const file = path.join(root, rel);
  let text = fs.readFileSync(file, 'utf8');
  let changed = false;
  for (const p of patches) {
    if (text.includes(p.after)) continue;
    if (!text.includes(p.before)) {
      console.error(`patch-kafkajs: ${file} does not contain the expected code for "${p.what}"; check whether this kafkajs version still needs the patch`);
      process.exit(1);
    }
    text = text.replace(p.before, p.after);
    applied.push(p.what);
    changed = true;
  }
  if (changed) fs.writeFileSync(file, text);
}
for (const [src, rel] of Object.entries(copies)) {
  const from = path.join(__dirname, 'kafkajs-eosv2', src);
  const to = path.join(root, rel);
  const wanted = fs.readFileSync(from, 'utf8');
  if (fs.existsSync(to)) {
    const have = fs.readFileSync(to, 'utf8');
    if (have === wanted) continue;
    if (!have.includes('tributary scripts/patch-kafkajs.js')) {
      console.error(`patch-kafkajs: ${to} exists and is not ours; this kafkajs version ships its own, check whether the patch is still needed`);
      process.exit(1);
    }
  }
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.writeFileSync(to, wanted);
  applied.push(`add ${rel}`);
}
if (applied.length > 0) console.log(`patch-kafkajs: ${applied.join('; ')}`);
