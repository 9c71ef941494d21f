package dev.tributary.peer;

import ai.onnxruntime.OrtException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.streams.errors.StreamsException;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;

/**
 * Transaction in, Prediction out, one record at a time: what Tributary's stateless topology
 * (extraction -> inference with model fraud/1) writes, field for field (see
 * src/stages/extraction.ts and scoreBatch in src/stages/inference.ts):
 * key = the message key (else transactionId); ingestTime = the input record's Kafka timestamp;
 * lineage = where the input was read; producedTime = when it was scored; latencyMs = the model
 * call's time; route "live"; no batch feature sets.
 */
final class PredictionProcessor implements Processor<byte[], GenericRecord, String, GenericRecord> {
  private static final String ROUTE = "live";

  private final FraudFeatures features;
  private final FraudScorer scorer;
  private final ModelCard card;
  private final Schema predictionSchema;
  private final Schema lineageSchema;
  private final double[] row;
  private ProcessorContext<String, GenericRecord> context;

  PredictionProcessor(FraudFeatures features, FraudScorer scorer, ModelCard card, Schema predictionSchema) {
    this.features = features;
    this.scorer = scorer;
    this.card = card;
    this.predictionSchema = predictionSchema;
    this.lineageSchema = predictionSchema.getField("lineage").schema();
    this.row = new double[features.size()];
  }

  @Override
  public void init(ProcessorContext<String, GenericRecord> context) {
    this.context = context;
  }

  @Override
  public void process(Record<byte[], GenericRecord> record) {
    GenericRecord tx = record.value();
    if (tx == null) return; // a tombstone carries no transaction to score
    // Behind the repartition step the record key is the entity; the original key and position
    // travel in headers (Rekey).
    Header originalKey = record.headers().lastHeader(Rekey.KEY_HEADER);
    Header originalTopic = record.headers().lastHeader(Rekey.TOPIC_HEADER);
    byte[] keyBytes = originalKey != null ? originalKey.value() : originalTopic != null ? null : record.key();
    String key = keyBytes != null ? new String(keyBytes, StandardCharsets.UTF_8) : tx.get("transactionId").toString();
    long eventTime = (Long) tx.get("eventTime");
    features.extractInto((CharSequence) tx.get("currency"), (Double) tx.get("amount"), eventTime,
        (CharSequence) tx.get("country"), (CharSequence) tx.get("merchantCategory"), row);
    double score;
    long started = System.nanoTime();
    try {
      score = scorer.score(row);
    } catch (OrtException e) {
      throw new StreamsException("model " + card.name + "@" + card.version + " failed to score key " + key + ": " + e.getMessage(), e);
    }
    double latencyMs = (System.nanoTime() - started) / 1e6;
    long producedTime = System.currentTimeMillis();

    RecordMetadata meta = context.recordMetadata().orElseThrow();
    GenericData.Record lineage = new GenericData.Record(lineageSchema);
    if (originalTopic != null) {
      lineage.put("topic", new String(originalTopic.value(), StandardCharsets.UTF_8));
      lineage.put("partition", Integer.parseInt(headerText(record, Rekey.PARTITION_HEADER)));
      lineage.put("offset", Long.parseLong(headerText(record, Rekey.OFFSET_HEADER)));
    } else {
      lineage.put("topic", meta.topic());
      lineage.put("partition", meta.partition());
      lineage.put("offset", meta.offset());
    }

    GenericData.Record p = new GenericData.Record(predictionSchema);
    p.put("key", key);
    p.put("modelName", card.name);
    p.put("modelVersion", card.version);
    p.put("score", score);
    p.put("label", score >= card.threshold);
    p.put("threshold", card.threshold);
    p.put("eventTime", eventTime);
    p.put("ingestTime", record.timestamp());
    p.put("producedTime", producedTime);
    p.put("lineage", lineage);
    p.put("featureSetVersions", Map.of());
    p.put("route", ROUTE);
    p.put("latencyMs", latencyMs);
    context.forward(record.withKey(key).withValue((GenericRecord) p));
  }

  private static String headerText(Record<byte[], GenericRecord> record, String name) {
    Header h = record.headers().lastHeader(name);
    if (h == null) throw new StreamsException("record behind the repartition topic lacks header " + name);
    return new String(h.value(), StandardCharsets.UTF_8);
  }
}
