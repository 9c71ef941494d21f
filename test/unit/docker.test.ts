/**
 * Static checks of the Docker path (no Docker engine where this project is developed and tested):
 * docker-compose.yml against the Compose Specification schema, every service's environment against
 * what its command reads, and the Dockerfile's stages, user, health check and copied files against
 * what the compiled code reads at run time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';
import { ENDPOINT_ENV, resolveEndpoints } from '../../src/stack/endpoints';
import { REGISTRY_VERSION } from '../../src/stack/artifacts';
import { CCOMPAT_PATH } from '../../src/stack/registry-server';
import { kafkaSecurityFromEnv } from '../../src/kafka/client';
import { registryAuthFromEnv } from '../../src/kafka/schema-registry';
import { redisOptionsFromEnv } from '../../src/util/redis';
import { repoRoot } from '../../src/stack/paths';
import { RECOMMENDED_NODE_FLAGS } from '../../src/util/node-flags';

const root = repoRoot();
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  environment?: Record<string, string | number>;
  /** Long form, or the short list form (condition service_started). */
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function dependsOn(s: ComposeService): Record<string, { condition: string }> {
  const d = s.depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((name) => [name, { condition: 'service_started' }])) : d;
}

const compose = parse(read('docker-compose.yml')) as ComposeFile;
const services = Object.entries(compose.services);
/** Services that run this project's image (`build: .`) with a tributary CLI command. */
const tributaryServices = services.filter(([, s]) => s.build !== undefined);

// ---------- Compose Specification schema ----------

/**
 * The vendored schema still labels subschemas with draft-04 `id` annotations, which ajv refuses;
 * they are labels only (nothing refers to them), so they are dropped. Keys of `properties` maps are
 * property names, not keywords, and are kept.
 */
function withoutDraft4Ids(node: unknown, inPropertiesMap = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutDraft4Ids(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (!inPropertiesMap && k === 'id' && typeof v === 'string') continue;
    out[k] = withoutDraft4Ids(v, !inPropertiesMap && (k === 'properties' || k === 'patternProperties' || k === 'definitions'));
  }
  return out;
}

function composeValidator() {
  const schema = withoutDraft4Ids(JSON.parse(read('test/fixtures/compose-spec/compose_spec.json'))) as Record<string, unknown>;
  // The vendored schema names its meta-schema by an http:// URL ajv does not register; it is a 2019-09 schema.
  delete schema.$schema;
  const ajv = new Ajv2019({ allErrors: true, strict: false, validateSchema: false });
  // Compose's own formats (compose-go implements them; these follow its definitions).
  ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/);
  // (Checked for strings, the form used here; ajv applies a format to one JSON type.)
  ajv.addFormat('ports', /^((\d{1,3}\.){3}\d{1,3}:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d+$/);
  return ajv.compile(schema);
}

describe('docker-compose.yml', () => {
  const validate = composeValidator();

  it('validates against the Compose Specification JSON schema', () => {
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the validator rejects what the schema forbids (an unknown service key, a malformed port, a bad duration)', () => {
    for (const edit of [
      (c: ComposeFile) => ((c.services.redis as Record<string, unknown>).restart_policy_typo = 'always'),
      (c: ComposeFile) => ((c.services.redis as Record<string, unknown>).ports = ['127.0.0.1:six:6379']),
      (c: ComposeFile) => ((c.services.kafka.healthcheck as Record<string, unknown>).interval = '5 seconds'),
    ]) {
      const copy = structuredClone(compose);
      edit(copy);
      expect(validate(copy)).toBe(false);
    }
  });

  it('every depends_on names a service, and a service_healthy condition a service with a health check', () => {
    for (const [name, s] of services) {
      for (const [dep, { condition }] of Object.entries(dependsOn(s))) {
        expect({ service: name, dependsOn: dep, exists: dep in compose.services }).toEqual({ service: name, dependsOn: dep, exists: true });
        const dependency = compose.services[dep];
        const healthy = dependency.healthcheck !== undefined || dependency.build !== undefined; // the image has a HEALTHCHECK
        if (condition === 'service_healthy') expect({ service: name, dependsOn: dep, healthy }).toEqual({ service: name, dependsOn: dep, healthy: true });
      }
    }
  });

  it('uses the same schema registry as the local stack: Apicurio at the same version, Confluent-compatible path', () => {
    expect(compose.services['schema-registry'].image).toBe(`apicurio/apicurio-registry:${REGISTRY_VERSION}`);
    for (const [, s] of tributaryServices) expect(new URL(String(s.environment?.SCHEMA_REGISTRY_URL)).pathname).toBe(CCOMPAT_PATH);
  });

  it('persists Redis with the append-only file on a named volume', () => {
    const redis = compose.services.redis;
    const args = redis.command ?? [];
    expect(args[args.indexOf('--appendonly') + 1]).toBe('yes');
    expect(args).not.toContain('--save'); // no `--save ""` turning snapshots off either
    const dir = args[args.indexOf('--dir') + 1];
    const volume = (redis.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === dir);
    expect(volume).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume![0]);
  });
});

// ---------- environment each command reads ----------

/**
 * The CLI subcommand's action source: from `.command('<name>')` to the next `.command(` in the file
 * that registers it. What the action calls is what it reads from the environment.
 */
function actionSource(command: string): string {
  const dir = path.join(root, 'src/cli/commands');
  for (const file of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const start = text.indexOf(`.command('${command}')`);
    if (start < 0) continue;
    const next = text.indexOf('.command(', start + 1);
    return text.slice(start, next < 0 ? undefined : next);
  }
  throw new Error(`no CLI command '${command}' in src/cli/commands`);
}

function cliCommand(s: ComposeService): string {
  const cmd = s.command ?? [];
  // node, the flags a pipeline process runs with (src/util/node-flags.ts), the CLI, its subcommand.
  const flags = RECOMMENDED_NODE_FLAGS.length;
  expect(cmd.slice(0, 2 + flags)).toEqual(['node', ...RECOMMENDED_NODE_FLAGS, 'dist/cli/main.js']);
  return cmd[2 + flags];
}

function flag(s: ComposeService, name: string): string | undefined {
  const cmd = s.command ?? [];
  const i = cmd.indexOf(name);
  return i < 0 ? undefined : cmd[i + 1];
}

describe('compose services: environment for what each command reads', () => {
  it('has services that run the image', () => {
    expect(tributaryServices.map(([n]) => n).sort()).toEqual(['drift', 'pipeline']);
  });

  it.each(tributaryServices)('%s: every endpoint its command resolves is set, and points at a compose service', (name, s) => {
    const source = actionSource(cliCommand(s));
    const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
    if (source.includes('resolveEndpoints(')) {
      // resolveEndpoints takes each endpoint from its variable or else from a local stack's state
      // file, which a container does not have: all of ENDPOINT_ENV must be set.
      const missing = Object.values(ENDPOINT_ENV).filter((v) => !env[v]);
      expect({ service: name, missing }).toEqual({ service: name, missing: [] });
      const resolved = resolveEndpoints({ env, stateFile: path.join(root, 'no-such-dir', 'state.json') });
      expect(resolved.source).toBe('env');
      const hosts = [...resolved.brokers.map((b) => b.split(':')[0]), new URL(resolved.schemaRegistryUrl).hostname, new URL(resolved.redisUrl).hostname];
      for (const host of hosts) expect({ service: name, host, defined: host in compose.services }).toEqual({ service: name, host, defined: true });
      // The broker address is one the broker advertises to other containers.
      expect(String(compose.services.kafka.environment?.KAFKA_ADVERTISED_LISTENERS)).toContain(`//${resolved.brokers[0]}`);
      // The services it depends on are the ones it talks to.
      expect(Object.keys(dependsOn(s)).sort()).toEqual([...new Set(hosts)].sort());
    }
    // Security settings read by the clients the command creates parse from this environment (none
    // set here: the compose stack is plaintext on a private network).
    if (source.includes('createKafka(')) expect(() => kafkaSecurityFromEnv(env)).not.toThrow();
    if (source.includes('registryAuthFromEnv(')) expect(() => registryAuthFromEnv(env)).not.toThrow();
    expect(() => redisOptionsFromEnv(env)).not.toThrow();
  });

  it.each(tributaryServices)('%s: serves /readyz where its health check and the published port look', (name, s) => {
    const source = actionSource(cliCommand(s));
    expect(source).toContain("'--metrics-port <port>'");
    const port = flag(s, '--metrics-port');
    expect(port).toBeDefined();
    const healthArgs = s.healthcheck?.test ?? ['CMD', 'node', 'scripts/docker-healthcheck.js'];
    const healthPort = healthArgs[3] ?? String(s.environment?.TRIBUTARY_METRICS_PORT ?? 9400);
    expect({ service: name, healthPort }).toEqual({ service: name, healthPort: port });
    expect((s as { ports?: string[] }).ports ?? []).toContain(`127.0.0.1:${port}:${port}`);
    // Bound beyond loopback inside the container, or Prometheus in the next container cannot scrape it.
    expect(flag(s, '--metrics-host') ?? dockerfile().runtime.env.TRIBUTARY_METRICS_HOST).toBe('0.0.0.0');
    expect(read('monitoring/prometheus.yml')).toContain(`"${name}:${port}"`);
  });
});

// ---------- Dockerfile ----------

interface Stage {
  name?: string;
  instructions: { op: string; args: string }[];
  env: Record<string, string>;
}

function dockerfile(): { stages: Stage[]; runtime: Stage } {
  const lines = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const m = /\bAS\s+(\S+)/i.exec(args);
      stages.push({ name: m?.[1], instructions: [], env: {} });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) continue; // ARG before the first FROM
    stage.instructions.push({ op: op.toUpperCase(), args });
    if (op.toUpperCase() === 'ENV') for (const m of args.matchAll(/(\w+)=(\S+)/g)) stage.env[m[1]] = m[2];
  }
  return { stages, runtime: stages[stages.length - 1] };
}

/**
 * Where the runtime stage's COPY instructions put things, relative to WORKDIR /app: one entry per
 * source (a directory destination, `./` or `dir/`, receives each source under its own name).
 */
function runtimeCopies(): { from?: string; source: string; dest: string }[] {
  return dockerfile()
    .runtime.instructions.filter((i) => i.op === 'COPY')
    .flatMap((i) => {
      const parts = i.args.split(/\s+/);
      const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
      const paths = parts.filter((p) => !p.startsWith('--'));
      const target = paths[paths.length - 1];
      const intoDir = target.endsWith('/') || target === '.';
      return paths.slice(0, -1).map((source) => {
        const dest = intoDir ? path.posix.join(target, path.posix.basename(source)) : target;
        return { from, source, dest: path.posix.normalize(dest).replace(/^\.\//, '') };
      });
    });
}

/** Paths the code reads relative to the package root: the literal leading segments of `path.join(repoRoot(), ...)`. */
function pathsReadFromRepoRoot(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/path\.join\(repoRoot\(\),((?:\s*'[^']*'\s*,?)+)/g)) {
          found.add(path.posix.join(...[...m[1].matchAll(/'([^']*)'/g)].map((s) => s[1])));
        }
      }
    }
  };
  walk(path.join(root, 'src'));
  return [...found].sort();
}

describe('Dockerfile', () => {
  const { stages, runtime } = dockerfile();

  it('is multi-stage: the runtime stage gets node_modules from a stage that pruned dev dependencies after building', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtime.instructions.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
    const nodeModules = runtimeCopies().find((c) => c.dest === 'node_modules');
    expect(nodeModules?.from).toBeDefined();
    const build = stages.find((s) => s.name === nodeModules!.from)!;
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(runs.indexOf('npm prune')).toBeGreaterThan(runs.indexOf('npm ci'));
  });

  it('runs as a non-root user that owns the only directory it writes ($TRIBUTARY_HOME)', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].split(':')[0];
    expect(['root', '0']).not.toContain(user);
    const home = runtime.env.TRIBUTARY_HOME;
    expect(home).toBe('/app/.tributary');
    const chown = runtime.instructions.find((i) => i.op === 'RUN' && i.args.includes(`chown ${user}`) && i.args.includes(home));
    expect(chown).toBeDefined();
    // Nothing else is handed to that user: code and data stay read-only to the process.
    expect(runtime.instructions.filter((i) => i.op === 'COPY' && i.args.includes('--chown'))).toEqual([]);
  });

  it('copies every file the compiled code reads from the package root, and nothing .dockerignore drops', () => {
    const copies = runtimeCopies();
    const dests = copies.map((c) => c.dest);
    expect(dests).toEqual(expect.arrayContaining(['package.json', 'dist']));
    const readAtRunTime = pathsReadFromRepoRoot();
    expect(readAtRunTime).toEqual(expect.arrayContaining(['schemas', 'models', 'src/features/scripts', 'src/routing/scripts/bandit-reward.lua']));
    for (const p of readAtRunTime.filter((x) => !x.startsWith('.tributary'))) {
      const covered = dests.some((d) => p === d || p.startsWith(`${d}/`));
      expect({ path: p, covered }).toEqual({ path: p, covered: true });
    }
    // Sources copied from the build context exist and are not excluded by .dockerignore (plain names
    // exclude that path and everything under it; `**/*.ext` excludes by extension).
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const ignored = (src: string) =>
      patterns.some((pat) => (pat.startsWith('**/*') ? src.endsWith(pat.slice(4)) : src === pat || src.startsWith(`${pat}/`)));
    const fromContext = stages.flatMap((s) => s.instructions)
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).filter((x) => !x.startsWith('--')).slice(0, -1));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const src of fromContext) {
      expect({ src, exists: fs.existsSync(path.join(root, src)), ignored: ignored(src) }).toEqual({ src, exists: true, ignored: false });
    }
    for (const local of ['node_modules', '.tributary', 'dist', '.git']) expect({ local, ignored: ignored(local) }).toEqual({ local, ignored: true });
  });

  it('checks health on /readyz with a script the image contains', () => {
    const health = runtime.instructions.find((i) => i.op === 'HEALTHCHECK');
    expect(health?.args).toContain('scripts/docker-healthcheck.js');
    expect(runtimeCopies().map((c) => c.dest)).toContain('scripts/docker-healthcheck.js');
    expect(read('scripts/docker-healthcheck.js')).toContain('/readyz');
  });
});
