// Added to kafkajs by tributary scripts/patch-kafkajs.js (KIP-447: exactly-once v2).
const Encoder = require('../../../encoder')
const { TxnOffsetCommit: apiKey } = require('../../apiKeys')

/**
 * TxnOffsetCommit Request (Version: 3, the first flexible one) => transactional_id group_id
 *   producer_id producer_epoch generation_id member_id group_instance_id [topics] TAG_BUFFER
 *   transactional_id => COMPACT_STRING
 *   group_id => COMPACT_STRING
 *   producer_id => INT64
 *   producer_epoch => INT16
 *   generation_id => INT32
 *   member_id => COMPACT_STRING
 *   group_instance_id => COMPACT_NULLABLE_STRING
 *   topics => name [partitions] TAG_BUFFER
 *     name => COMPACT_STRING
 *     partitions => partition_index committed_offset committed_leader_epoch committed_metadata TAG_BUFFER
 *       partition_index => INT32
 *       committed_offset => INT64
 *       committed_leader_epoch => INT32
 *       committed_metadata => COMPACT_NULLABLE_STRING
 *
 * The generation, member id and instance id are the consumer group member's: the group
 * coordinator refuses the commit of a member that is no longer in that generation.
 */
module.exports = ({ transactionalId, groupId, producerId, producerEpoch, generationId, memberId, groupInstanceId = null, topics }) => ({
  apiKey,
  apiVersion: 3,
  apiName: 'TxnOffsetCommit',
  encode: async () => {
    return new Encoder()
      .writeUVarIntBytes() // request header v2 tagged fields (kafkajs writes header v1)
      .writeUVarIntString(transactionalId)
      .writeUVarIntString(groupId)
      .writeInt64(producerId)
      .writeInt16(producerEpoch)
      .writeInt32(generationId)
      .writeUVarIntString(memberId)
      .writeUVarIntString(groupInstanceId)
      .writeUVarIntArray(topics.map(encodeTopic))
      .writeUVarIntBytes()
  },
})

const encodeTopic = ({ topic, partitions }) =>
  new Encoder()
    .writeUVarIntString(topic)
    .writeUVarIntArray(partitions.map(encodePartition))
    .writeUVarIntBytes()

const encodePartition = ({ partition, offset, leaderEpoch = -1, metadata = null }) =>
  new Encoder()
    .writeInt32(partition)
    .writeInt64(offset)
    .writeInt32(leaderEpoch)
    .writeUVarIntString(metadata)
    .writeUVarIntBytes()
