package dev.tributary.peer;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * One ONNX Runtime session over the model, scoring one row per call (batch of 1, the idiomatic
 * per-record call from a Kafka Streams processor). Session options match Tributary's demo: one
 * intra-op thread, all graph optimizations. {@link OrtSession#run} is thread-safe, so stream
 * threads share the session.
 */
final class FraudScorer implements AutoCloseable {
  private final OrtEnvironment env;
  private final OrtSession session;
  private final ModelCard card;
  private final Set<String> outputs;
  private final long[] shape;

  FraudScorer(Path model, ModelCard card) {
    this.card = card;
    this.env = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      this.session = env.createSession(model.toString(), options);
    } catch (OrtException e) {
      throw new ConfigError("cannot load ONNX model " + model + ": " + e.getMessage(), e);
    }
    if (!session.getInputNames().contains(card.inputName)) {
      throw new ConfigError("model " + model + " has no input '" + card.inputName + "' (card inputs[0].name); it has " + session.getInputNames());
    }
    if (!session.getOutputNames().contains(card.scoreOutput)) {
      throw new ConfigError("model " + model + " has no output '" + card.scoreOutput + "' (card score.output); it has " + session.getOutputNames());
    }
    this.outputs = Set.of(card.scoreOutput);
    this.shape = new long[] {1, card.featureNames.size()};
  }

  /** Probability of the positive class for one row of features (narrowed to float32, like Tributary). */
  double score(double[] features) throws OrtException {
    float[] row = new float[features.length];
    for (int i = 0; i < row.length; i++) row[i] = (float) features[i];
    try (OnnxTensor input = OnnxTensor.createTensor(env, FloatBuffer.wrap(row), shape);
        OrtSession.Result result = session.run(Map.of(card.inputName, input), outputs)) {
      OnnxValue out = result.get(0);
      float[][] probabilities = (float[][]) out.getValue();
      return probabilities[0][card.scoreIndex];
    }
  }

  @Override
  public void close() throws OrtException {
    session.close();
  }
}
