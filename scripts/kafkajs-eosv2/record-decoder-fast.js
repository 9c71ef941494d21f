// Added by tributary scripts/patch-kafkajs.js (patch 12): a fetched record decoded without BigInt.
//
// kafkajs decodes every fetched record's timestamp and offset by parsing the batch's first
// timestamp and first offset from decimal strings into BigInt-backed Longs, adding the record's
// delta and printing the sum again, and reads the timestamp delta one byte at a time through Long
// objects: a dozen or more short-lived objects and two BigInt parses per record. Its headers are
// folded with an object spread per header. Here: the batch's first timestamp and offset become
// Numbers once per batch, a delta of up to seven varint bytes (49 bits) is summed in Number
// arithmetic, and headers go into one object. Wherever a value is not a safe integer (offsets or
// timestamps beyond 2^53, deltas of eight bytes or more) the record is decoded again by kafkajs'
// own code, so the results are the same; test/unit/kafkajs-record-decoder.test.ts compares both.
// One difference, on purpose: a header whose key names an Object.prototype member ("constructor",
// "__proto__") is kept as its own value here; kafkajs' fold found the inherited member and made an
// array of it and the value.
const TimestampTypes = require('../../../timestampTypes')

// The batch's first timestamp and offset as Numbers (NaN when not safe integers): a batch's records
// are decoded one after another, so the last batch's are kept (no property added to its context).
let lastBatch
let firstTs = NaN
let firstOff = NaN

function useBatch(batchContext) {
  if (batchContext === lastBatch) return
  lastBatch = batchContext
  const ts = Number(batchContext.firstTimestamp)
  const off = Number(batchContext.firstOffset)
  firstTs = Number.isSafeInteger(ts) ? ts : NaN
  firstOff = Number.isSafeInteger(off) ? off : NaN
}

/** A zigzag varlong of at most 7 bytes as a Number; undefined (offset unchanged) when longer. */
function readSmallVarLong(decoder) {
  const buf = decoder.buffer
  let off = decoder.offset
  let result = 0
  let mult = 1
  for (let i = 0; i < 7; i++) {
    const byte = buf[off++]
    if (byte === undefined) return undefined
    result += (byte & 0x7f) * mult
    if (byte < 0x80) {
      decoder.offset = off
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2
    }
    mult *= 128
  }
  return undefined
}

/** A header key (varint length, UTF-8), decoded from the record's buffer without a slice of it. */
function readKey(decoder) {
  const length = decoder.readVarInt()
  if (length === -1) return null
  const start = decoder.offset
  decoder.offset = start + length
  return decoder.buffer.toString('utf8', start, start + length)
}

module.exports = unpatched => {
  // kafkajs' own decoder from the record's start (no closure per record: this runs for every one)
  const slow = (decoder, start, batchContext) => {
    decoder.offset = start
    return unpatched(decoder, batchContext)
  }
  return (decoder, batchContext = {}) => decodeFast(decoder, batchContext, slow)
}

function decodeFast(decoder, batchContext, slow) {
  const start = decoder.offset
  const { magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext
  useBatch(batchContext)
  const attributes = decoder.readInt8()

  const timestampDelta = readSmallVarLong(decoder)
  if (timestampDelta === undefined) return slow(decoder, start, batchContext)
  let timestamp
  if (timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp) {
    timestamp = maxTimestamp
  } else {
    const t = firstTs + timestampDelta
    if (!Number.isSafeInteger(t)) return slow(decoder, start, batchContext)
    timestamp = String(t)
  }

  const o = firstOff + decoder.readVarInt()
  if (!Number.isSafeInteger(o)) return slow(decoder, start, batchContext)
  const offset = String(o)

  const key = decoder.readVarIntBytes()
  const value = decoder.readVarIntBytes()
  const count = decoder.readVarInt()
  const headers = {}
  for (let i = 0; i < count; i++) {
    const headerKey = readKey(decoder)
    const headerValue = decoder.readVarIntBytes()
    const prev = Object.hasOwn(headers, headerKey) ? headers[headerKey] : undefined
    const next = prev === undefined ? headerValue : Array.isArray(prev) ? prev.concat([headerValue]) : [prev, headerValue]
    if (headerKey === '__proto__') Object.defineProperty(headers, headerKey, { value: next, enumerable: true, writable: true, configurable: true })
    else headers[headerKey] = next
  }

  return {
    magicByte,
    attributes, // Record level attributes are presently unused
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext,
  }
}
