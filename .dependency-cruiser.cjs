/**
 * Layering rules, checked by `npm run lint:layers` (part of `npm test` and .ci/run).
 * Each rule says which way the architecture allows imports; README "Layout" names the layers.
 */
module.exports = {
  forbidden: [
    {
      name: 'topology-is-a-pure-spec-layer',
      comment:
        'src/topology describes topologies; it imports only util. Processors, feature checks and schema catalogs are passed to its loader (src/stages/load-topology.ts assembles them).',
      severity: 'error',
      from: { path: '^src/topology/' },
      to: { path: '^src/', pathNot: '^src/(topology|util)/' },
    },
    {
      name: 'runtime-does-not-import-the-dev-stack',
      comment:
        'src/stack (local servers, test harness, prerequisites) is a development tool: only the CLI (stack/setup/demo commands) may use it. Runtime code finds endpoints and paths in src/util.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(stack|cli)/' },
      to: { path: '^src/stack/' },
    },
    {
      name: 'engine-does-not-import-generated-types',
      comment:
        'The engine, stages, features and kafka layers work on any schema: they declare the records they own in src/engine/records.ts and never import src/client/generated (the typed client uses those; they hold only the package\'s own schemas, an example\'s input types live in examples/<name>/generated).',
      severity: 'error',
      from: { path: '^src/(engine|stages|features|kafka)/' },
      to: { path: '^src/client/generated/' },
    },
    {
      name: 'util-is-a-leaf',
      comment: 'src/util (paths, endpoints, statistics, errors, logging, field paths) is shared by every layer and imports none of them.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
    {
      name: 'shared-statistics-come-from-util',
      comment: 'Statistics used by more than one layer live in src/util/stats.ts; src/shadow/stats.ts only re-exports them for old imports.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/shadow/' },
      to: { path: '^src/shadow/stats\\.ts$' },
    },
    {
      name: 'nothing-imports-the-cli',
      comment: 'src/cli is the outermost layer: runtime code never depends on the command line.',
      severity: 'error',
      // src/backfill/main.ts is an entry point of its own (the backfill job's process), a command line like src/cli.
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/backfill/main\\.ts$'] },
      to: { path: '^src/cli/' },
    },
    {
      name: 'engine-does-not-import-the-examples',
      comment:
        'examples/<name> (the fraud and IoT domains) are users of the engine: nothing under src/ imports them, so the engine builds and its unit tests pass with an example folder deleted (scripts/check-without-example.sh, in .ci/run). `tributary demo` runs the fraud example\'s compiled runner in a child process instead.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^examples/' },
    },
    {
      name: 'example-types-stay-in-their-example',
      comment:
        'An example\'s generated Avro types (examples/<name>/generated, from examples/<name>/schemas by scripts/gen-types.js) describe that domain\'s events: nothing outside the example imports them. Tests and benchmarks that exercise the domain reach its types through the example\'s public module (e.g. examples/fraud/schemas.ts: the schema folder, a SchemaSet for the typed client and the record types). src/client/generated holds only the package\'s own schemas, so the engine and the typed client stay domain-free.',
      severity: 'error',
      from: { pathNot: '^examples/' },
      to: { path: '^examples/[^/]+/generated/' },
    },
    {
      name: 'examples-do-not-share-generated-types',
      comment: 'One example never imports another\'s generated types: each can be deleted on its own (scripts/check-without-example.sh).',
      severity: 'error',
      from: { path: '^examples/([^/]+)/' },
      to: { path: '^examples/[^/]+/generated/', pathNot: '^examples/$1/generated/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer that names another's types depends on it.
    tsPreCompilationDeps: true,
    // tsconfig.json covers src/, test/, bench/ and examples/ (lint:layers cruises them all).
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|dist-examples|node_modules)/|^bench/dist' },
  },
};
