// Added to kafkajs by tributary scripts/patch-kafkajs.js (KIP-447: exactly-once v2).
const Encoder = require('../../../encoder')
const { OffsetFetch: apiKey } = require('../../apiKeys')

/**
 * OffsetFetch Request (Version: 7) => group_id [topics] require_stable TAG_BUFFER
 *   group_id => COMPACT_STRING
 *   topics => name [partition_indexes] TAG_BUFFER (null: all topics of the group)
 *     name => COMPACT_STRING
 *     partition_indexes => INT32
 *   require_stable => BOOLEAN
 *
 * With require_stable, a partition whose offset is held by a pending transaction answers
 * UNSTABLE_OFFSET_COMMIT instead of the last committed offset.
 */
module.exports = ({ groupId, topics, requireStable = true }) => ({
  apiKey,
  apiVersion: 7,
  apiName: 'OffsetFetch',
  encode: async () => {
    return new Encoder()
      .writeUVarIntBytes() // request header v2 tagged fields (kafkajs writes header v1)
      .writeUVarIntString(groupId)
      .writeUVarIntArray(topics == null ? null : topics.map(encodeTopic))
      .writeBoolean(requireStable)
      .writeUVarIntBytes()
  },
})

const encodeTopic = ({ topic, partitions }) =>
  new Encoder()
    .writeUVarIntString(topic)
    .writeUVarIntArray(partitions.map(({ partition }) => new Encoder().writeInt32(partition)))
    .writeUVarIntBytes()
