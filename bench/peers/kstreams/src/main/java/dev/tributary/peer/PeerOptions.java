package dev.tributary.peer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The command line (the bench helper calls exactly this):
 * <pre>
 * --bootstrap HOST:PORT --registry URL --input TOPIC --output TOPIC --app-id ID
 * --model FILE --card FILE --spec FILE
 * [--commit-interval-ms N] [--linger-ms N] [--threads N] [--guarantee exactly_once_v2|at_least_once]
 * [--state-dir DIR] [--repartition-by FIELD]
 * </pre>
 * Options left out keep Kafka Streams' own defaults, so the untuned run is what a team gets out of
 * the box.
 */
final class PeerOptions {
  static final String EXACTLY_ONCE_V2 = "exactly_once_v2";
  static final String AT_LEAST_ONCE = "at_least_once";

  final String bootstrap;
  final String registryUrl;
  final String inputTopic;
  final String outputTopic;
  final String applicationId;
  final Path modelFile;
  final Path cardFile;
  final Path specFile;
  final OptionalLong commitIntervalMs;
  final OptionalLong lingerMs;
  final OptionalInt threads;
  final String guarantee;
  /** Kafka Streams' state directory; unset = next to the jar (target/state), not the OS temp dir. */
  final Path stateDir;
  /**
   * A top-level string field of the input event to re-key by through a repartition topic before
   * scoring (Kafka Streams' re-key + {@code repartition()}), as Tributary's hop does for
   * {@code partitionBy}; empty = no repartition.
   */
  final java.util.Optional<String> repartitionBy;

  private PeerOptions(Map<String, String> v) {
    bootstrap = required(v, "bootstrap");
    registryUrl = stripTrailingSlash(required(v, "registry"));
    inputTopic = required(v, "input");
    outputTopic = required(v, "output");
    applicationId = required(v, "app-id");
    modelFile = readableFile(v, "model");
    cardFile = readableFile(v, "card");
    specFile = readableFile(v, "spec");
    commitIntervalMs = optionalLong(v, "commit-interval-ms", 0);
    lingerMs = optionalLong(v, "linger-ms", 0);
    OptionalLong t = optionalLong(v, "threads", 1);
    threads = t.isPresent() ? OptionalInt.of((int) Math.min(t.getAsLong(), 64)) : OptionalInt.empty();
    guarantee = v.getOrDefault("guarantee", EXACTLY_ONCE_V2);
    if (!guarantee.equals(EXACTLY_ONCE_V2) && !guarantee.equals(AT_LEAST_ONCE)) {
      throw new UsageError("--guarantee must be " + EXACTLY_ONCE_V2 + " or " + AT_LEAST_ONCE + " (got '" + guarantee + "')");
    }
    stateDir = v.containsKey("state-dir") ? Path.of(v.get("state-dir")) : defaultStateDir();
    String by = v.get("repartition-by");
    if (by != null && by.isEmpty()) throw new UsageError("--repartition-by needs a field name");
    repartitionBy = java.util.Optional.ofNullable(by);
  }

  static final List<String> KNOWN = List.of("bootstrap", "registry", "input", "output", "app-id", "model", "card", "spec",
      "commit-interval-ms", "linger-ms", "threads", "guarantee", "state-dir", "repartition-by");

  static PeerOptions parse(String[] args) {
    Map<String, String> values = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) throw new UsageError("unexpected argument '" + a + "'");
      String name = a.substring(2);
      if (!KNOWN.contains(name)) throw new UsageError("unknown option " + a);
      if (i + 1 >= args.length) throw new UsageError(a + " needs a value");
      if (values.put(name, args[++i]) != null) throw new UsageError(a + " given twice");
    }
    return new PeerOptions(values);
  }

  static String usage() {
    return "usage: java -jar tributary-kstreams-peer.jar --bootstrap HOST:PORT --registry URL --input TOPIC --output TOPIC"
        + " --app-id ID --model FILE --card FILE --spec FILE [--commit-interval-ms N] [--linger-ms N] [--threads N]"
        + " [--guarantee exactly_once_v2|at_least_once] [--state-dir DIR] [--repartition-by FIELD]";
  }

  private static String required(Map<String, String> v, String name) {
    String s = v.get(name);
    if (s == null || s.isEmpty()) throw new UsageError("--" + name + " is required");
    return s;
  }

  private static Path readableFile(Map<String, String> v, String name) {
    Path p = Path.of(required(v, name));
    if (!Files.isRegularFile(p) || !Files.isReadable(p)) throw new UsageError("--" + name + ": cannot read file " + p.toAbsolutePath());
    return p;
  }

  private static OptionalLong optionalLong(Map<String, String> v, String name, long min) {
    String s = v.get(name);
    if (s == null) return OptionalLong.empty();
    try {
      long n = Long.parseLong(s);
      if (n < min) throw new UsageError("--" + name + " must be >= " + min + " (got " + s + ")");
      return OptionalLong.of(n);
    } catch (NumberFormatException e) {
      throw new UsageError("--" + name + " must be an integer (got '" + s + "')");
    }
  }

  private static String stripTrailingSlash(String url) {
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }

  /** target/state beside the jar: Kafka Streams warns about state dirs under the OS temp dir. */
  private static Path defaultStateDir() {
    try {
      Path jar = Path.of(PeerOptions.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      return jar.toAbsolutePath().getParent().resolve("state");
    } catch (Exception e) {
      return Path.of("kstreams-state").toAbsolutePath();
    }
  }

  /** A bad command line: printed with the usage, exit status 2. */
  static final class UsageError extends RuntimeException {
    UsageError(String message) {
      super(message);
    }
  }
}
