package dev.tributary.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;

/**
 * The two calls of the Confluent-compatible registry API the peer needs (the registry's
 * {@code /apis/ccompat/v7} under Apicurio): fetch a schema by id, register one under a subject.
 * Basic auth from SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD when both are set, like
 * Tributary.
 */
final class SchemaRegistryHttp {
  private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
  private static final Duration TIMEOUT = Duration.ofSeconds(10);

  private final String baseUrl;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
  private final ObjectMapper json = new ObjectMapper();
  private final String authorization;

  SchemaRegistryHttp(String baseUrl, Map<String, String> env) {
    this.baseUrl = baseUrl;
    String user = env.get("SCHEMA_REGISTRY_USERNAME");
    String password = env.get("SCHEMA_REGISTRY_PASSWORD");
    this.authorization = user != null && !user.isEmpty() && password != null && !password.isEmpty()
        ? "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8))
        : null;
  }

  /** The schema text registered under {@code id}. */
  String schemaById(int id) {
    JsonNode body = call(request("/schemas/ids/" + id).GET(), "fetch schema id " + id);
    JsonNode schema = body.get("schema");
    if (schema == null || !schema.isTextual()) throw new RegistryError("registry answered schema id " + id + " without a schema");
    return schema.asText();
  }

  /** Registers {@code schemaText} under {@code subject}; an identical schema returns the existing id. */
  int register(String subject, String schemaText) {
    String body;
    try {
      body = json.writeValueAsString(Map.of("schema", schemaText, "schemaType", "AVRO"));
    } catch (IOException e) {
      throw new RegistryError("cannot encode the registration of subject '" + subject + "'", e);
    }
    String path = "/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions";
    JsonNode answer = call(request(path).POST(HttpRequest.BodyPublishers.ofString(body)), "register subject '" + subject + "'");
    JsonNode id = answer.get("id");
    if (id == null || !id.canConvertToInt()) throw new RegistryError("registry answered without an id when registering subject '" + subject + "'");
    return id.asInt();
  }

  private HttpRequest.Builder request(String path) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(TIMEOUT)
        .header("content-type", CONTENT_TYPE).header("accept", CONTENT_TYPE);
    if (authorization != null) b.header("authorization", authorization);
    return b;
  }

  private JsonNode call(HttpRequest.Builder builder, String what) {
    HttpResponse<String> res;
    try {
      res = http.send(builder.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new RegistryError("cannot " + what + " at " + baseUrl + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RegistryError("interrupted while trying to " + what, e);
    }
    if (res.statusCode() / 100 != 2) {
      throw new RegistryError("cannot " + what + " at " + baseUrl + ": HTTP " + res.statusCode() + " " + res.body());
    }
    try {
      return json.readTree(res.body());
    } catch (IOException e) {
      throw new RegistryError("registry answered non-JSON when trying to " + what + ": " + e.getMessage(), e);
    }
  }

  /** The registry could not be reached or refused a call. */
  static final class RegistryError extends RuntimeException {
    RegistryError(String message) {
      super(message);
    }

    RegistryError(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
