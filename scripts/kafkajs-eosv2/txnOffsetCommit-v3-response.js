// Added to kafkajs by tributary scripts/patch-kafkajs.js (KIP-447: exactly-once v2).
const Decoder = require('../../../decoder')
const { parse } = require('../v0/response')

/**
 * TxnOffsetCommit Response (Version: 3) => throttle_time_ms [topics] TAG_BUFFER
 *   throttle_time_ms => INT32
 *   topics => name [partitions] TAG_BUFFER
 *     name => COMPACT_STRING
 *     partitions => partition_index error_code TAG_BUFFER
 *       partition_index => INT32
 *       error_code => INT16
 */
const decode = async rawData => {
  const decoder = new Decoder(rawData)
  decoder.readTaggedFields() // response header v1
  const throttleTime = decoder.readInt32()
  const topics = decoder.readUVarIntArray(decodeTopic) || []
  decoder.readTaggedFields()
  // Brokers send the response before throttling (as from v1): the client throttles itself.
  return { throttleTime: 0, clientSideThrottleTime: throttleTime, topics }
}

const decodeTopic = decoder => {
  const topic = decoder.readUVarIntString()
  const partitions = decoder.readUVarIntArray(decodePartition) || []
  decoder.readTaggedFields()
  return { topic, partitions }
}

const decodePartition = decoder => {
  const partition = { partition: decoder.readInt32(), errorCode: decoder.readInt16() }
  decoder.readTaggedFields()
  return partition
}

module.exports = { decode, parse }
