package dev.tributary.peer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;

/**
 * The Kafka Streams reference peer: input topic of Transactions -> fraud/1 predictions on the
 * output topic, in one stateless processor (behind a re-key through a repartition topic with
 * --repartition-by). Prints {"event":"running"} once the client is
 * RUNNING; SIGTERM closes the streams client cleanly (its transaction committed or aborted).
 */
public final class Main {
  private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);

  private Main() {}

  public static void main(String[] args) {
    PeerOptions options;
    try {
      options = PeerOptions.parse(args);
    } catch (PeerOptions.UsageError e) {
      System.err.println("tributary-kstreams-peer: " + e.getMessage());
      System.err.println(PeerOptions.usage());
      System.exit(2);
      return;
    }
    try {
      System.exit(run(options));
    } catch (ConfigError | SchemaRegistryHttp.RegistryError | TopicError e) {
      System.err.println("tributary-kstreams-peer: " + e.getMessage());
      System.exit(1);
    }
  }

  private static int run(PeerOptions o) {
    ModelCard card = ModelCard.load(o.cardFile);
    FraudFeatures features = FraudFeatures.load(o.specFile);
    checkCardMatchesFeatures(o, card, features);
    FraudScorer scorer = new FraudScorer(o.modelFile, card);

    ensureOutputTopic(o); // before registering anything: a mistyped input topic fails here

    SchemaRegistryHttp registry = new SchemaRegistryHttp(o.registryUrl, System.getenv());
    Schema transactionSchema = new Schema.Parser().parse(resource("transaction.avsc"));
    ConfluentAvro.RegisteredSerializer predictionSerializer =
        new ConfluentAvro.RegisteredSerializer(registry, o.outputTopic + "-value", resource("prediction.avsc"));
    Serde<GenericRecord> transactionSerde = Serdes.serdeFrom(readOnly(), new ConfluentAvro.ResolvingDeserializer(registry, transactionSchema));
    Serde<GenericRecord> predictionSerde = Serdes.serdeFrom(predictionSerializer, new ConfluentAvro.ResolvingDeserializer(registry, predictionSerializer.schema()));

    StreamsBuilder builder = new StreamsBuilder();
    KStream<byte[], GenericRecord> transactions;
    if (o.repartitionBy.isPresent()) {
      // Re-keyed by the entity through an internal repartition topic (<app-id>-by-<field>-repartition,
      // as many partitions as the input), then decoded again and scored: the work Tributary's hop does.
      String field = o.repartitionBy.get();
      checkEntityField(transactionSchema, field);
      ConfluentAvro.ResolvingDeserializer decoder = new ConfluentAvro.ResolvingDeserializer(registry, transactionSchema);
      transactions = builder.stream(o.inputTopic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
          .process(() -> new Rekey(decoder, field))
          .repartition(Repartitioned.<byte[], byte[]>as("by-" + field).withKeySerde(Serdes.ByteArray()).withValueSerde(Serdes.ByteArray()))
          .mapValues(value -> value == null ? null : decoder.deserialize(o.inputTopic, value));
    } else {
      transactions = builder.stream(o.inputTopic, Consumed.with(Serdes.ByteArray(), transactionSerde));
    }
    transactions
        .process(() -> new PredictionProcessor(features, scorer, card, predictionSerializer.schema()))
        .to(o.outputTopic, Produced.with(Serdes.String(), predictionSerde));
    Topology topology = builder.build();

    KafkaStreams streams = new KafkaStreams(topology, streamsConfig(o));
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicBoolean announced = new AtomicBoolean(false);
    AtomicBoolean failed = new AtomicBoolean(false);
    streams.setStateListener((next, previous) -> {
      if (next == KafkaStreams.State.RUNNING && announced.compareAndSet(false, true)) {
        System.out.println("{\"event\":\"running\"}");
        System.out.flush();
      }
      if (next == KafkaStreams.State.ERROR) failed.set(true);
      if (next == KafkaStreams.State.NOT_RUNNING || next == KafkaStreams.State.ERROR) stopped.countDown();
    });
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("ERROR tributary-kstreams-peer: stream thread failed: " + rootMessage(e));
      return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(CLOSE_TIMEOUT);
      try {
        scorer.close();
      } catch (Exception ignored) {
        // the process is exiting; the session's memory goes with it
      }
    }, "peer-shutdown"));

    streams.start();
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    streams.close(CLOSE_TIMEOUT);
    return failed.get() ? 1 : 0;
  }

  private static Properties streamsConfig(PeerOptions o) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.applicationId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        o.guarantee.equals(PeerOptions.EXACTLY_ONCE_V2) ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir.toString());
    o.threads.ifPresent(n -> p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, n));
    o.commitIntervalMs.ifPresent(ms -> p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, ms));
    o.lingerMs.ifPresent(ms -> p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), ms));
    return p;
  }

  /** --repartition-by names a field of the input event (a typo fails at start, not per record). */
  private static void checkEntityField(Schema transactionSchema, String field) {
    if (transactionSchema.getField(field) == null) {
      throw new ConfigError("--repartition-by: the input event (" + transactionSchema.getFullName() + ") has no field '" + field + "'");
    }
  }

  /** The card must describe the features this peer computes, in the same order. */
  private static void checkCardMatchesFeatures(PeerOptions o, ModelCard card, FraudFeatures features) {
    if (!card.featureSet.equals(FraudFeatures.FEATURE_SET) || card.featureVersion != FraudFeatures.FEATURE_VERSION) {
      throw new ConfigError(o.cardFile + ": features " + card.featureSet + "@" + card.featureVersion + " are not the stateless "
          + FraudFeatures.FEATURE_SET + "@" + FraudFeatures.FEATURE_VERSION + " this peer computes");
    }
    if (!card.featureNames.equals(features.names)) {
      throw new ConfigError(o.cardFile + ": features.names " + card.featureNames + " differ from " + o.specFile + " features " + features.names);
    }
  }

  /**
   * Kafka Streams does not create sink topics; a missing output topic is created with the input's
   * partition count (broker default replication), which is what Tributary's topology provisioning
   * does for its own topics.
   */
  private static void ensureOutputTopic(PeerOptions o) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
    try (Admin admin = Admin.create(p)) {
      Map<String, TopicDescription> input;
      try {
        input = admin.describeTopics(List.of(o.inputTopic)).allTopicNames().get(30, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (e.getCause() instanceof UnknownTopicOrPartitionException) throw new TopicError("input topic " + o.inputTopic + " does not exist");
        throw new TopicError("cannot describe input topic " + o.inputTopic + ": " + rootMessage(e));
      }
      int partitions = input.get(o.inputTopic).partitions().size();
      Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
      if (names.contains(o.outputTopic)) return;
      try {
        admin.createTopics(List.of(new NewTopic(o.outputTopic, Optional.of(partitions), Optional.empty()))).all().get(30, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) throw new TopicError("cannot create output topic " + o.outputTopic + ": " + rootMessage(e));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new TopicError("interrupted while checking topics");
    } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new TopicError("cannot list topics at " + o.bootstrap + ": " + rootMessage(e));
    }
  }

  /** schemas/*.avsc, packed into the jar at build time from the repository's schemas/ folder. */
  private static String resource(String name) {
    try (InputStream in = Main.class.getResourceAsStream("/schemas/" + name)) {
      if (in == null) throw new ConfigError("schema " + name + " is missing from the jar (rebuild with build.sh)");
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ConfigError("cannot read schema " + name + " from the jar: " + e.getMessage(), e);
    }
  }

  /** The source serde only ever deserializes. */
  private static Serializer<GenericRecord> readOnly() {
    return (topic, record) -> {
      throw new UnsupportedOperationException("the transaction serde only deserializes");
    };
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    StringBuilder b = new StringBuilder(String.valueOf(t.getMessage()));
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
      b.append(": ").append(t.getMessage());
    }
    return b.toString();
  }

  /** An input topic that does not exist or an output topic that cannot be created. */
  static final class TopicError extends RuntimeException {
    TopicError(String message) {
      super(message);
    }
  }
}
