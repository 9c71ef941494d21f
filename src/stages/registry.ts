import type { ProcessorDefinition } from './processor';
import { TributaryError } from '../util/errors';

export class UnknownProcessorError extends TributaryError {}

/** Processor types by name. Built-ins register themselves in src/stages/builtin.ts. */
export class ProcessorRegistry {
  private readonly defs = new Map<string, ProcessorDefinition<any>>();

  register<C>(def: ProcessorDefinition<C>): this {
    if (this.defs.has(def.name)) throw new TributaryError(`processor '${def.name}' is already registered`);
    this.defs.set(def.name, def);
    return this;
  }

  get(name: string): ProcessorDefinition<unknown> {
    const def = this.defs.get(name);
    if (!def) throw new UnknownProcessorError(`unknown processor '${name}' (known: ${this.names().join(', ')})`);
    return def;
  }

  has(name: string): boolean {
    return this.defs.has(name);
  }

  names(): string[] {
    return [...this.defs.keys()].sort();
  }

  all(): ProcessorDefinition<unknown>[] {
    return this.names().map((n) => this.get(n));
  }
}
