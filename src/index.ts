/**
 * The `tributary` package: what a plugin or an embedding service imports.
 *
 *   import { defineProcessor, defineFeatureFunction, RecordRejection, type InputRecord } from 'tributary';
 *
 * Plugins (README "Plugins") register processors through the same API the built-ins use, and feature
 * functions that declarative definitions call; the engine
 * runs them like any stage (chains, side outputs, dead letters, transactions). A plugin loaded by a
 * topology gets this very module instance, whatever folder it lives in.
 */

// The plugin API: processor definitions and what processors see and return.
export { defineProcessor, definePlugin, isDefinedProcessor, PluginDefinitionError } from './stages/define';
export type { DefinedPlugin, DefinedProcessor, PluginDefinition, ProcessorDeclaration } from './stages/define';
export { exactlyOnceSafe } from './stages/processor';
export type {
  InputRecord,
  Lineage,
  OutputRecord,
  ProcessResult,
  Processor,
  ProcessorContext,
  ProcessorDefinition,
  ProcessorGuarantees,
} from './stages/processor';
export { RecordRejection, type ErrorKind } from './kafka/dead-letter';
export { TributaryError, ConfigError, ConfigErrors, TransientError } from './util/errors';
export type { Logger } from './util/logger';

// Reading fields of events: the one field-path syntax (dotted Avro names, nullable unions looked through).
export { parseFieldPath, fieldAt, fieldGetter, entityKey, resolveFieldPath, type FieldPath, type FieldPathResolution } from './util/field-path';

// Declarative stateless features (README "Declarative features"): the definitions format, loaded,
// checked against an input Avro schema and compiled like the extraction stage does.
export { loadFeatureDefinitions, buildFeatureSet, parseDefinitions, FeatureDefinitionsError, type DeclarativeFeatureSet } from './features/declarative/load';
export type { FeatureDefinitions, FeatureSpec, Expr, TableSpec } from './features/declarative/spec';
// Plugin feature functions (README "Plugins"): called from definitions like a built-in operator, with a Python twin for training.
export { defineFeatureFunction, isDefinedFeatureFunction, pythonTwins, FeatureFunctionDefinitionError, FeatureFunctionResultError } from './features/declarative/functions';
export type { FeatureFunctionDeclaration, DefinedFeatureFunction, FeatureFunctionArg, FeatureFunctionArgType, FeatureFunctionCatalog, RegisteredFeatureFunction, PythonTwinRef } from './features/declarative/functions';
export { loadPlugins, featureFunctionsFor, type PluginLoadResult } from './stages/plugin-loader';

// Topologies: load, validate and run them in-process.
export { loadTopology, validateTopology, topologyBaseDir, topicSchema } from './stages/load-topology';
export type { LoadedTopology, LoadedPlugin, PluginFunctionInfo, StageSpec, TopicSpec, TopologySpec } from './topology/spec';
// Also brings the `features` section's declaration (src/features/spec.ts augments TopologySpec) into a plugin's program.
export type { FeaturesSpec } from './features/spec';
export { ProcessorRegistry } from './stages/registry';
export { builtinProcessors } from './stages/builtin';
export { Pipeline, type PipelineOptions, type PipelineEndpoints } from './stages/pipeline';

// The typed client API: producers of input events, consumers of predictions, the Avro record types.
export * from './client';
