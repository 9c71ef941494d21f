// Added to kafkajs by tributary scripts/patch-kafkajs.js: remembers which broker coordinates a
// group or a transactional id.
//
// kafkajs 2.2.4 sends a FindCoordinator request every time it needs a coordinator: before each
// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn of a transaction, i.e. 3-6 extra
// round trips (and their client and broker CPU) per exactly-once commit. Kafka's Java client keeps
// the coordinator until it answers that it no longer is one; so does this cache: any request
// answered NOT_COORDINATOR_FOR_GROUP, GROUP_COORDINATOR_NOT_AVAILABLE or GROUP_LOAD_IN_PROGRESS
// (coordination moved or is moving) empties it, process-wide, and the next lookup asks the cluster
// again. A cached coordinator whose broker left the cluster's metadata is looked up again too.
const FORGET_ON = new Set(['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS'])

let generation = 0
const stats = { lookups: 0, hits: 0, forgotten: 0 }

const cacheKey = (groupId, coordinatorType) => `${coordinatorType}:${groupId}`

module.exports = {
  stats,
  /** The cache of one cluster (a Map of key -> { nodeId, generation }). */
  create: () => new Map(),
  /** The cached coordinator's node id, or undefined. */
  get(cache, groupId, coordinatorType) {
    const entry = cache.get(cacheKey(groupId, coordinatorType))
    if (!entry || entry.generation !== generation) return undefined
    stats.hits++
    return entry.nodeId
  },
  set(cache, groupId, coordinatorType, nodeId) {
    stats.lookups++
    cache.set(cacheKey(groupId, coordinatorType), { nodeId, generation })
  },
  delete(cache, groupId, coordinatorType) {
    cache.delete(cacheKey(groupId, coordinatorType))
  },
  /** Called with every error a broker request threw: coordination errors empty every cache. */
  observe(error) {
    if (error && FORGET_ON.has(error.type)) {
      generation++
      stats.forgotten++
    }
  },
}
