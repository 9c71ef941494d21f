package dev.tributary.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The stateless fraud features (feature set {@code fraud_txn}, definitions version 1), ported from
 * src/features/fraud-extractor.ts: same definitions, same order, computed in float64 and narrowed to
 * float32 only when the row is handed to the model (as Tributary's inference stage does).
 *
 * <pre>
 * amount_usd           amount * toUsd[currency]; unknown currency: rate 1.0
 * log_amount_usd       ln(1 + amount_usd) if amount_usd &gt; 0, else 0
 * hour_of_day          floor(eventTime / 3600000) mod 24 (UTC, 0..23, also for negative times)
 * is_night             1 if hour_of_day &lt; 6, else 0
 * is_high_risk_country 1 if the country is in the spec and marked highRisk, else 0
 * currency_mismatch    0 only if country and currency are both known and the currency is the country's
 * cat_&lt;category&gt;       one-hot over the spec's categories in spec order; unknown category: all 0
 * </pre>
 * Strings match exactly (case-sensitive, untrimmed), like the TypeScript twin.
 */
final class FraudFeatures {
  static final String FEATURE_SET = "fraud_txn";
  static final int FEATURE_VERSION = 1;
  static final List<String> BASE_FEATURES = List.of(
      "amount_usd", "log_amount_usd", "hour_of_day", "is_night", "is_high_risk_country", "currency_mismatch");

  private static final long MS_PER_HOUR = 3_600_000L;
  private static final int NIGHT_END_HOUR = 6;

  private record Country(String currency, double highRisk) {}

  final List<String> names;
  private final Map<String, Integer> categoryIndex = new HashMap<>();
  private final Map<String, Country> countries = new HashMap<>();
  private final Map<String, Double> toUsd = new HashMap<>();

  private FraudFeatures(Path file, JsonNode spec) {
    if (!FEATURE_SET.equals(spec.path("featureSet").asText())) throw new ConfigError(file + ": featureSet must be \"" + FEATURE_SET + "\"");
    if (spec.path("featureVersion").asInt(-1) != FEATURE_VERSION) {
      throw new ConfigError(file + ": featureVersion " + spec.path("featureVersion") + " is not implemented (this peer implements " + FEATURE_VERSION + ")");
    }
    JsonNode categories = array(file, spec, "categories");
    List<String> expected = new ArrayList<>(BASE_FEATURES);
    for (int i = 0; i < categories.size(); i++) {
      String name = nonEmpty(file, categories.get(i).get("name"), "categories[" + i + "].name");
      if (categoryIndex.put(name, i) != null) throw new ConfigError(file + ": category names must be unique");
      expected.add("cat_" + name);
    }
    JsonNode currencies = array(file, spec, "currencies");
    for (int i = 0; i < currencies.size(); i++) {
      JsonNode c = currencies.get(i);
      String code = nonEmpty(file, c.get("code"), "currencies[" + i + "].code");
      JsonNode rate = c.get("toUsd");
      if (rate == null || !rate.isNumber() || !(rate.asDouble() > 0)) throw new ConfigError(file + ": currencies[" + i + "].toUsd must be > 0");
      if (toUsd.put(code, rate.asDouble()) != null) throw new ConfigError(file + ": currency codes must be unique");
    }
    JsonNode cs = array(file, spec, "countries");
    for (int i = 0; i < cs.size(); i++) {
      JsonNode c = cs.get(i);
      String code = nonEmpty(file, c.get("code"), "countries[" + i + "].code");
      String currency = nonEmpty(file, c.get("currency"), "countries[" + i + "].currency");
      if (!toUsd.containsKey(currency)) throw new ConfigError(file + ": countries[" + i + "].currency " + currency + " is not in currencies");
      JsonNode high = c.get("highRisk");
      if (high == null || !high.isBoolean()) throw new ConfigError(file + ": countries[" + i + "].highRisk must be a boolean");
      if (countries.put(code, new Country(currency, high.asBoolean() ? 1 : 0)) != null) throw new ConfigError(file + ": country codes must be unique");
    }
    List<String> listed = new ArrayList<>();
    for (JsonNode f : array(file, spec, "features")) listed.add(f.asText());
    if (!listed.equals(expected)) {
      throw new ConfigError(file + ": features must be exactly " + expected + " (v" + FEATURE_VERSION + " definitions in category order)");
    }
    names = List.copyOf(expected);
  }

  static FraudFeatures load(Path file) {
    try {
      return new FraudFeatures(file, new ObjectMapper().readTree(file.toFile()));
    } catch (IOException e) {
      throw new ConfigError("cannot read generator spec " + file + ": " + e.getMessage(), e);
    }
  }

  int size() {
    return names.size();
  }

  /** Writes the features of one transaction to {@code out[0 .. size)}; every slot is written. */
  void extractInto(CharSequence currency, double amount, long eventTime, CharSequence countryCode, CharSequence category, double[] out) {
    String cur = currency.toString();
    Double rate = toUsd.get(cur);
    double usd = amount * (rate == null ? 1.0 : rate);
    out[0] = usd;
    out[1] = usd > 0 ? Math.log1p(usd) : 0;
    long hour = Math.floorMod(Math.floorDiv(eventTime, MS_PER_HOUR), 24L);
    out[2] = hour;
    out[3] = hour < NIGHT_END_HOUR ? 1 : 0;
    Country country = countries.get(countryCode.toString());
    out[4] = country == null ? 0 : country.highRisk();
    out[5] = country != null && rate != null && cur.equals(country.currency()) ? 0 : 1;
    int base = BASE_FEATURES.size();
    for (int i = base; i < out.length; i++) out[i] = 0;
    Integer ci = categoryIndex.get(category.toString());
    if (ci != null) out[base + ci] = 1;
  }

  private static JsonNode array(Path file, JsonNode parent, String key) {
    JsonNode n = parent.get(key);
    if (n == null || !n.isArray() || n.isEmpty()) throw new ConfigError(file + ": " + key + " must be a non-empty array");
    return n;
  }

  private static String nonEmpty(Path file, JsonNode n, String path) {
    if (n == null || !n.isTextual() || n.asText().isEmpty()) throw new ConfigError(file + ": " + path + " must be a non-empty string");
    return n.asText();
  }
}
