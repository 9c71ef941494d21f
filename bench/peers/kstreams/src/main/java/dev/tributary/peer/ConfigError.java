package dev.tributary.peer;

/** A model card or generator spec this peer cannot serve; the message names the file and field. */
final class ConfigError extends RuntimeException {
  ConfigError(String message) {
    super(message);
  }

  ConfigError(String message, Throwable cause) {
    super(message, cause);
  }
}
