// Added to kafkajs by tributary scripts/patch-kafkajs.js (KIP-447: exactly-once v2).
const Decoder = require('../../../decoder')
const { failure, createErrorFromCode } = require('../../../error')

/**
 * OffsetFetch Response (Version: 7) => throttle_time_ms [topics] error_code TAG_BUFFER
 *   throttle_time_ms => INT32
 *   topics => name [partitions] TAG_BUFFER
 *     name => COMPACT_STRING
 *     partitions => partition_index committed_offset committed_leader_epoch metadata error_code TAG_BUFFER
 *       partition_index => INT32
 *       committed_offset => INT64
 *       committed_leader_epoch => INT32
 *       metadata => COMPACT_NULLABLE_STRING
 *       error_code => INT16
 *   error_code => INT16
 *
 * Same shape as kafkajs' v1-v4 answers ({ throttleTime, errorCode, responses: [{ topic, partitions:
 * [{ partition, offset, metadata, errorCode }] }] }), so callers need not care which version answered.
 */
const decode = async rawData => {
  const decoder = new Decoder(rawData)
  decoder.readTaggedFields() // response header v1
  const throttleTime = decoder.readInt32()
  const responses = decoder.readUVarIntArray(decodeTopic) || []
  const errorCode = decoder.readInt16()
  decoder.readTaggedFields()
  return { throttleTime: 0, clientSideThrottleTime: throttleTime, errorCode, responses }
}

const decodeTopic = decoder => {
  const topic = decoder.readUVarIntString()
  const partitions = decoder.readUVarIntArray(decodePartition) || []
  decoder.readTaggedFields()
  return { topic, partitions }
}

const decodePartition = decoder => {
  const partition = {
    partition: decoder.readInt32(),
    offset: decoder.readInt64().toString(),
    leaderEpoch: decoder.readInt32(),
    metadata: decoder.readUVarIntString(),
    errorCode: decoder.readInt16(),
  }
  decoder.readTaggedFields()
  return partition
}

// Errors are thrown (as by v1-v4), except a partition's UNSTABLE_OFFSET_COMMIT: it belongs to that
// partition only (a transaction holding its offset is pending), so its errorCode is left for the
// caller (admin.fetchOffsets marks the partition `unstable`) and the other partitions still answer.
const UNSTABLE_OFFSET_COMMIT = 88
const parse = async data => {
  if (failure(data.errorCode)) throw createErrorFromCode(data.errorCode)
  for (const { partitions } of data.responses) {
    const failed = partitions.find(({ errorCode }) => failure(errorCode) && errorCode !== UNSTABLE_OFFSET_COMMIT)
    if (failed) throw createErrorFromCode(failed.errorCode)
  }
  return data
}

module.exports = { decode, parse }
