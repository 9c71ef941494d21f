package dev.tributary.peer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The Confluent wire format, written here because Confluent's serdes are not on Maven Central:
 * magic byte 0, the 4-byte big-endian registry id of the writer schema, then Avro binary.
 */
final class ConfluentAvro {
  static final byte MAGIC = 0;
  static final int HEADER_BYTES = 5;

  private ConfluentAvro() {}

  /**
   * Decodes with the writer schema named by the record's id (fetched once per id) resolved to a
   * fixed reader schema, so any compatible writer version reads as the reader's shape.
   */
  static final class ResolvingDeserializer implements Deserializer<GenericRecord> {
    private final SchemaRegistryHttp registry;
    private final Schema reader;
    private final Map<Integer, GenericDatumReader<GenericRecord>> readersById = new ConcurrentHashMap<>();

    ResolvingDeserializer(SchemaRegistryHttp registry, Schema reader) {
      this.registry = registry;
      this.reader = reader;
    }

    @Override
    public GenericRecord deserialize(String topic, byte[] data) {
      if (data == null) return null;
      if (data.length < HEADER_BYTES || data[0] != MAGIC) {
        throw new SerializationException("record on " + topic + " is not in the Confluent Avro wire format (magic byte 0 + 4-byte schema id)");
      }
      int id = ByteBuffer.wrap(data, 1, 4).getInt();
      GenericDatumReader<GenericRecord> datumReader = readersById.computeIfAbsent(id, this::readerFor);
      try {
        BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(data, HEADER_BYTES, data.length - HEADER_BYTES, null);
        return datumReader.read(null, decoder);
      } catch (IOException | RuntimeException e) {
        throw new SerializationException("cannot decode a record on " + topic + " written with schema id " + id + " as " + reader.getFullName() + ": " + e.getMessage(), e);
      }
    }

    private GenericDatumReader<GenericRecord> readerFor(int id) {
      try {
        Schema writer = new Schema.Parser().parse(registry.schemaById(id));
        return new GenericDatumReader<>(writer, reader);
      } catch (RuntimeException e) {
        throw new SerializationException("cannot read writer schema id " + id + ": " + e.getMessage(), e);
      }
    }
  }

  /** Encodes with one schema, registered under its subject when constructed (fails fast at startup). */
  static final class RegisteredSerializer implements Serializer<GenericRecord> {
    private final Schema schema;
    private final byte[] header;
    private final GenericDatumWriter<GenericRecord> writer;

    RegisteredSerializer(SchemaRegistryHttp registry, String subject, String schemaText) {
      this.schema = new Schema.Parser().parse(schemaText);
      int id = registry.register(subject, schemaText);
      this.header = ByteBuffer.allocate(HEADER_BYTES).put(MAGIC).putInt(id).array();
      this.writer = new GenericDatumWriter<>(schema);
    }

    Schema schema() {
      return schema;
    }

    @Override
    public byte[] serialize(String topic, GenericRecord record) {
      if (record == null) return null;
      ByteArrayOutputStream out = new ByteArrayOutputStream(256);
      out.writeBytes(header);
      try {
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        writer.write(record, encoder);
        encoder.flush();
      } catch (IOException | RuntimeException e) {
        throw new SerializationException("cannot encode a " + schema.getFullName() + " for " + topic + ": " + e.getMessage(), e);
      }
      return out.toByteArray();
    }
  }
}
