package dev.tributary.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The parts of a model card (models/&lt;name&gt;/&lt;version&gt;/model.json) the peer needs: what
 * src/inference/model-card.ts reads for scoring a stateless model.
 */
final class ModelCard {
  final String name;
  final String version;
  final String featureSet;
  final int featureVersion;
  /** Ordered model input features. */
  final List<String> featureNames;
  /** Name of the model's one input (float32 [-1, width]). */
  final String inputName;
  /** Output holding the class probabilities and the column of the positive class. */
  final String scoreOutput;
  final int scoreIndex;
  /** label = score >= threshold. */
  final double threshold;

  private ModelCard(Path file, JsonNode root) {
    name = text(file, root, "name");
    version = text(file, root, "version");
    JsonNode features = node(file, root, "features");
    featureSet = text(file, features, "features.set", "set");
    featureVersion = integer(file, features, "features.version", "version");
    featureNames = new ArrayList<>();
    JsonNode names = node(file, features, "features.names", "names");
    if (!names.isArray() || names.isEmpty()) throw new ConfigError(file + ": features.names must be a non-empty array");
    for (JsonNode n : names) featureNames.add(n.asText());
    JsonNode inputs = node(file, root, "inputs");
    if (!inputs.isArray() || inputs.size() != 1) throw new ConfigError(file + ": inputs must list exactly one input");
    inputName = text(file, inputs.get(0), "inputs[0].name", "name");
    JsonNode score = node(file, root, "score");
    scoreOutput = text(file, score, "score.output", "output");
    scoreIndex = integer(file, score, "score.index", "index");
    JsonNode t = node(file, root, "threshold");
    if (!t.isNumber() || t.asDouble() < 0 || t.asDouble() > 1) throw new ConfigError(file + ": threshold must be a number in [0, 1]");
    threshold = t.asDouble();
  }

  static ModelCard load(Path file) {
    try {
      return new ModelCard(file, new ObjectMapper().readTree(file.toFile()));
    } catch (IOException e) {
      throw new ConfigError("cannot read model card " + file + ": " + e.getMessage(), e);
    }
  }

  private static JsonNode node(Path file, JsonNode parent, String path) {
    return node(file, parent, path, path);
  }

  private static JsonNode node(Path file, JsonNode parent, String path, String key) {
    JsonNode n = parent.get(key);
    if (n == null || n.isNull()) throw new ConfigError(file + ": " + path + " is missing");
    return n;
  }

  private static String text(Path file, JsonNode parent, String path) {
    return text(file, parent, path, path);
  }

  private static String text(Path file, JsonNode parent, String path, String key) {
    JsonNode n = node(file, parent, path, key);
    if (!n.isTextual() || n.asText().isEmpty()) throw new ConfigError(file + ": " + path + " must be a non-empty string");
    return n.asText();
  }

  private static int integer(Path file, JsonNode parent, String path, String key) {
    JsonNode n = node(file, parent, path, key);
    if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < 0) throw new ConfigError(file + ": " + path + " must be an integer >= 0");
    return n.asInt();
  }
}
