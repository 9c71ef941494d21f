import * as fs from 'node:fs';
import Redis, { type RedisOptions } from 'ioredis';

/**
 * One way to open Redis everywhere, so security and timeouts are uniform:
 * - the URL may carry credentials (`redis://user:pass@host:port`, `rediss://` for TLS);
 * - otherwise REDIS_USERNAME and REDIS_PASSWORD or REDIS_PASSWORD_FILE supply AUTH (secrets stay out of files in the repo);
 * - REDIS_TLS_CA_FILE adds a CA for `rediss://` servers;
 * - a command timeout turns a stalled server into an error, so a batch fails and is retried instead of hanging.
 */
export function redisOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RedisOptions {
  const options: RedisOptions = { maxRetriesPerRequest: 3, commandTimeout: Number(env.TRIBUTARY_REDIS_COMMAND_TIMEOUT_MS ?? 5000) };
  if (env.REDIS_USERNAME) options.username = env.REDIS_USERNAME;
  const password = env.REDIS_PASSWORD_FILE ? fs.readFileSync(env.REDIS_PASSWORD_FILE, 'utf8').trim() : env.REDIS_PASSWORD;
  if (password) options.password = password;
  if (env.REDIS_TLS_CA_FILE) options.tls = { ca: [fs.readFileSync(env.REDIS_TLS_CA_FILE, 'utf8')] };
  return options;
}

export function createRedis(url: string, overrides: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Redis {
  const fromUrl = new URL(url);
  const options = redisOptionsFromEnv(env);
  // Credentials in the URL win over the environment.
  if (fromUrl.password) delete options.password;
  if (fromUrl.username) delete options.username;
  return new Redis(url, { ...options, ...overrides });
}
