import type { ProcessorDefinition } from './processor';
import { TributaryError } from '../util/errors';

export class UnknownProcessorError extends TributaryError {}

/** A second registration of a name; names where the first one came from. */
export class DuplicateProcessorError extends TributaryError {
  constructor(
    readonly processor: string,
    readonly firstSource: string,
  ) {
    super(`processor '${processor}' is already registered by ${firstSource}`);
  }
}

/**
 * Processor types by name. Built-ins register in src/stages/builtin.ts, plugin modules through
 * src/stages/plugin-loader.ts — both with definitions made by defineProcessor (src/stages/define.ts).
 * Implements the spec layer's ProcessorCatalog, so the topology loader validates stages against it.
 */
export class ProcessorRegistry {
  private readonly defs = new Map<string, { def: ProcessorDefinition<any>; source: string }>();

  /** `source` says where the definition came from (shown when a name is registered twice). */
  register<C>(def: ProcessorDefinition<C>, source = 'the built-in processors'): this {
    const first = this.defs.get(def.name);
    if (first) throw new DuplicateProcessorError(def.name, first.source);
    this.defs.set(def.name, { def, source });
    return this;
  }

  get(name: string): ProcessorDefinition<unknown> {
    const entry = this.defs.get(name);
    if (!entry) throw new UnknownProcessorError(`unknown processor '${name}' (known: ${this.names().join(', ')})`);
    return entry.def;
  }

  has(name: string): boolean {
    return this.defs.has(name);
  }

  /** Where a registered name came from (`the built-in processors`, `plugins[0] (./plugins/x.ts)`). */
  sourceOf(name: string): string | undefined {
    return this.defs.get(name)?.source;
  }

  names(): string[] {
    return [...this.defs.keys()].sort();
  }

  all(): ProcessorDefinition<unknown>[] {
    return this.names().map((n) => this.get(n));
  }

  /** A copy to add a topology's plugins to, leaving this one as it is. */
  clone(): ProcessorRegistry {
    const copy = new ProcessorRegistry();
    for (const [name, entry] of this.defs) copy.defs.set(name, entry);
    return copy;
  }
}
