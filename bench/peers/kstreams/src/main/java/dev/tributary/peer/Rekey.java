package dev.tributary.peer;

import java.nio.charset.StandardCharsets;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;

/**
 * The peer's repartition step, the Kafka Streams counterpart of Tributary's hop: decodes each
 * event only to read its entity field, re-keys the record by it (the value bytes and timestamp
 * unchanged) and carries the original key and position in headers, so the prediction behind the
 * repartition topic has the key and lineage it would have without it (as Tributary's
 * `tributary-key` / `tributary-lineage` headers do). Kafka Streams forwards headers through its
 * repartition topics.
 */
final class Rekey implements Processor<byte[], byte[], byte[], byte[]> {
  static final String KEY_HEADER = "peer-key";
  static final String TOPIC_HEADER = "peer-topic";
  static final String PARTITION_HEADER = "peer-partition";
  static final String OFFSET_HEADER = "peer-offset";

  private final Deserializer<GenericRecord> decoder;
  private final String field;
  private ProcessorContext<byte[], byte[]> context;

  Rekey(Deserializer<GenericRecord> decoder, String field) {
    this.decoder = decoder;
    this.field = field;
  }

  @Override
  public void init(ProcessorContext<byte[], byte[]> context) {
    this.context = context;
  }

  @Override
  public void process(Record<byte[], byte[]> record) {
    if (record.value() == null) return; // a tombstone carries no transaction to score
    RecordMetadata meta = context.recordMetadata().orElseThrow();
    Object entity = decoder.deserialize(meta.topic(), record.value()).get(field);
    Headers headers = record.headers();
    if (record.key() != null) headers.add(KEY_HEADER, record.key());
    headers.add(TOPIC_HEADER, meta.topic().getBytes(StandardCharsets.UTF_8));
    headers.add(PARTITION_HEADER, Integer.toString(meta.partition()).getBytes(StandardCharsets.UTF_8));
    headers.add(OFFSET_HEADER, Long.toString(meta.offset()).getBytes(StandardCharsets.UTF_8));
    // An event without the entity keeps its key (it touches no per-entity state), as Tributary's hop.
    byte[] key = entity == null ? record.key() : entity.toString().getBytes(StandardCharsets.UTF_8);
    context.forward(record.withKey(key).withHeaders(headers));
  }
}
