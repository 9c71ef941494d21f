// Added to kafkajs by tributary scripts/patch-kafkajs.js (14): a Produce request (v3-v7, records
// not compressed) encoded into one buffer sized once, with room in front for the request's frame.
//
// kafkajs builds a produce request as nested encoders: each record in its own, the records copied
// into the batch body (grown by doubling, each growth a copy), the body into the batch, the batch
// behind its offset, that into the partition's, the topic's and the request's encoders, and the
// request twice more by protocol/request.js (header, then size) — every produced byte copied about
// nine times, through about eight buffers per partition allocated outside V8's pool. Here the
// sizes are summed first (Record v0's own size functions), then everything is written once with
// the Encoder's own methods and Record v0's writeRecord (so the same bytes), the lengths and the
// batch's CRC32-C filled in where they belong. protocol/request.js writes the frame (size, api key and version,
// correlation id, client id) into the reserved front when `frameHeadroom` matches what it needs.
//
// The oracle is kafkajs' own nested encoding (test/unit/kafkajs-produce-one-buffer.test.ts).
const Long = require('../../../../utils/long')
const Encoder = require('../../../encoder')
const crc32C = require('../../../recordBatch/crc32C')
const { headerCountOf, bodySizeOf, writeRecord } = require('../../../recordBatch/record/v0')

const MAGIC_BYTE = 2 // record batch v2 (RecordBatch v0 in kafkajs' names)
const TRANSACTIONAL_MASK = 16
/** Attributes to FirstSequence, the batch body's fixed part (RecordBatch v0). */
const BATCH_BODY_FIXED = 2 + 4 + 8 + 8 + 8 + 2 + 4
/** FirstOffset, Length, PartitionLeaderEpoch, Magic, CRC: the batch in front of its body. */
const BATCH_HEAD = 8 + 4 + 4 + 1 + 4

/** What writeUVarInt ensures beyond a 1-byte varint: so the last one written never grows the buffer. */
const VARINT_SLACK = 4

const sizeOfString = value => 2 + (value == null ? 0 : Buffer.byteLength(value, 'utf8'))

/** Scratch of record body sizes and header counts between the two passes (the encoding is synchronous). */
let bodySizes = new Int32Array(1024)
let headerCounts = new Int32Array(1024)

function grown(scratch, length, used) {
  const bigger = new Int32Array(length)
  bigger.set(scratch.subarray(0, used))
  return bigger
}

/**
 * A partition's first and largest timestamps as kafkajs picks them: its messages' timestamps
 * without the missing ones, sorted by Array.prototype.sort's default (string) order; the first and
 * last of that order, or now when none is given.
 */
function timestampRange(messages, dateNow) {
  let first
  let max
  let firstKey
  let maxKey
  for (let i = 0; i < messages.length; i++) {
    const t = messages[i].timestamp
    if (t == null) continue
    const k = typeof t === 'string' ? t : String(t)
    if (firstKey === undefined) {
      first = max = t
      firstKey = maxKey = k
      continue
    }
    // Strict for the first (a stable sort keeps the earliest of equals first), not for the last.
    if (k < firstKey) {
      first = t
      firstKey = k
    }
    if (k >= maxKey) {
      max = t
      maxKey = k
    }
  }
  return firstKey === undefined ? [dateNow, dateNow] : [first, max]
}

/**
 * @param {object} request the produce request's arguments (v3's)
 * @param {number} [headroom=0] bytes reserved in front for protocol/request.js's frame
 * @returns {Encoder} the payload from `headroom` to its end; `frameHeadroom` says how much is reserved
 */
module.exports = (
  {
    acks,
    timeout,
    transactionalId = null,
    producerId = Long.fromInt(-1),
    producerEpoch = 0,
    topicData,
  },
  headroom = 0
) => {
  const dateNow = Date.now()
  // Pass 1: sizes. Per partition its timestamps; per record its body size, in order.
  let total = headroom + sizeOfString(transactionalId) + 2 + 4 + 4
  let records = 0
  const ranges = []
  for (const { topic, partitions } of topicData) {
    total += sizeOfString(topic) + 4
    for (const { messages } of partitions) {
      const range = timestampRange(messages, dateNow)
      ranges.push(range)
      const firstTimestamp = range[0]
      if (records + messages.length > bodySizes.length) {
        const length = Math.max(2 * bodySizes.length, records + messages.length)
        bodySizes = grown(bodySizes, length, records)
        headerCounts = grown(headerCounts, length, records)
      }
      let body = BATCH_BODY_FIXED + 4
      for (let i = 0; i < messages.length; i++) {
        const { key, value, headers, timestamp } = messages[i]
        const headerCount = headerCountOf(headers)
        const size = bodySizeOf(key, value, headers, i, (timestamp || dateNow) - firstTimestamp, headerCount)
        headerCounts[records] = headerCount
        bodySizes[records++] = size
        body += Encoder.sizeOfVarInt(size) + size
      }
      total += 4 + 4 + BATCH_HEAD + body
    }
  }

  // Pass 2: one buffer, written in order with the Encoder's own methods.
  // An Encoder over a buffer of the request's size (the constructor would allocate its own), plus
  // the 4 bytes a varint's write asks for beyond its last byte (writeUVarInt ensures 5 available).
  const encoder = Object.create(Encoder.prototype)
  encoder.buf = Buffer.allocUnsafe(total + VARINT_SLACK)
  encoder.offset = headroom
  encoder.frameHeadroom = headroom
  encoder.writeString(transactionalId).writeInt16(acks).writeInt32(timeout).writeInt32(topicData.length)
  const transactional = !!transactionalId
  let record = 0
  let partitionIndex = 0
  for (const { topic, partitions } of topicData) {
    encoder.writeString(topic).writeInt32(partitions.length)
    for (const data of partitions) {
      const { partition, messages } = data
      const [firstTimestamp, maxTimestamp] = ranges[partitionIndex++]
      const firstSequence = data.firstSequence === undefined ? 0 : data.firstSequence
      encoder.writeInt32(partition)
      const recordSetSizeAt = encoder.offset
      encoder.writeInt32(0) // the record set's size, below
      const batchStart = encoder.offset
      encoder.writeInt64(Long.fromInt(0)).writeInt32(0) // FirstOffset; Length, below
      encoder.writeInt32(0).writeInt8(MAGIC_BYTE) // PartitionLeaderEpoch, Magic
      const crcAt = encoder.offset
      encoder.writeUInt32(0) // CRC, below
      const bodyStart = encoder.offset
      encoder
        .writeInt16(transactional ? TRANSACTIONAL_MASK : 0)
        .writeInt32(messages.length - 1)
        .writeInt64(firstTimestamp)
        .writeInt64(maxTimestamp)
        .writeInt64(producerId)
        .writeInt16(producerEpoch)
        .writeInt32(firstSequence)
        .writeInt32(messages.length)
      for (let i = 0; i < messages.length; i++, record++) {
        const { key, value, headers, timestamp } = messages[i]
        writeRecord(encoder, key, value, headers, i, (timestamp || dateNow) - firstTimestamp, bodySizes[record], headerCounts[record])
      }
      const end = encoder.offset
      const buf = encoder.buf
      buf.writeUInt32BE(crc32C(buf.subarray(bodyStart, end)), crcAt)
      buf.writeInt32BE(end - batchStart - 12, batchStart + 8) // Length: what follows it
      buf.writeInt32BE(end - batchStart, recordSetSizeAt)
    }
  }
  return encoder
}
