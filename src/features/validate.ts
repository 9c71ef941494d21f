import type { SchemaCatalog } from '../kafka/avro-schemas';
import type { LoadedTopology } from '../topology/spec';
import { ConfigError } from '../util/errors';
import { createExtractor } from './extractors';
import type { FeatureFunctionCatalog } from './declarative/functions';
import type { FeatureSetRef } from './declarative/spec';
import { featureSetProblems } from './spec';

/**
 * Checks of the topology's `features:` section beyond its JSON Schema: duplicate set names, and
 * per set the entity and `of` fields against the input schema and base features of every
 * extraction stage that uses it. Errors carry the exact path, e.g. `features.sets[2].fields[1].of`.
 */
export function featureSectionErrors(loaded: LoadedTopology, catalog: SchemaCatalog, functions: FeatureFunctionCatalog = new Map()): ConfigError[] {
  const { spec, file } = loaded;
  const errors: ConfigError[] = [];
  const sets = spec.features?.sets ?? [];
  const seen = new Set<string>();
  sets.forEach((s, i) => {
    if (seen.has(s.name)) errors.push(new ConfigError(`features.sets[${i}].name`, `duplicate feature set '${s.name}'`, file));
    seen.add(s.name);
  });
  sets.forEach((set, i) => {
    const users = spec.stages.filter((st) => st.processor === 'feature_extraction' && Array.isArray((st.config as { features?: unknown }).features) && ((st.config as { features: string[] }).features).includes(set.name));
    for (const st of users) {
      const topic = spec.topics.find((t) => t.name === st.input.topic);
      if (!topic || !catalog.has(topic.schema)) continue; // reported elsewhere
      const eventFields = fieldPaths(catalog.get(topic.schema).type);
      let baseFeatures: string[] = [];
      try {
        const c = st.config as { featureSet: FeatureSetRef };
        baseFeatures = [...createExtractor(c.featureSet, loaded.baseDir, { name: topic.schema, type: catalog.get(topic.schema).type }, functions).names];
      } catch {
        /* reported on the stage */
      }
      for (const [p, msg] of featureSetProblems(set, { eventFields, baseFeatures })) {
        errors.push(new ConfigError(`features.sets[${i}].${p}`, `${msg} (used by stage '${st.name}')`, file));
      }
    }
  });
  return errors;
}

interface AvroNode {
  typeName: string;
  fields?: Array<{ name: string; type: AvroNode }>;
  types?: AvroNode[];
}

/** Every field path of a record type (src/util/field-path.ts syntax: nested records, nullable unions looked through). */
export function fieldPaths(type: unknown, prefix = '', depth = 0): string[] {
  let t = type as AvroNode;
  if (t.typeName.startsWith('union') && t.types) {
    const branches = t.types.filter((b) => b.typeName !== 'null');
    if (branches.length !== 1) return [];
    t = branches[0];
  }
  if (t.typeName !== 'record' || !t.fields || depth > 8) return [];
  return t.fields.flatMap((f) => [`${prefix}${f.name}`, ...fieldPaths(f.type, `${prefix}${f.name}.`, depth + 1)]);
}
