/**
 * The plugin API without loading modules: defineProcessor's checks, definePlugin, the registry's
 * duplicate and source reporting, and that the built-ins are defined through the same call.
 * (Loading plugin files is tested through the built CLI: test/integration/plugins.test.ts.)
 */
import { builtinDefinitions, builtinProcessors } from '../../src/stages/builtin';
import { definePlugin, defineProcessor, isDefinedProcessor, PluginDefinitionError, type ProcessorDeclaration } from '../../src/stages/define';
import { exactlyOnceSafe } from '../../src/stages/processor';
import { DuplicateProcessorError } from '../../src/stages/registry';

const base: ProcessorDeclaration<{ n: number }> = {
  name: 'my_proc',
  summary: 'test',
  inputSchema: 'feature-vector',
  outputSchema: 'feature-vector',
  configSchema: { type: 'object', properties: { n: { type: 'integer' } } },
  deterministic: true,
  sideEffects: false,
  create: async () => ({ processBatch: async () => [], close: async () => {} }),
};

function refusal(decl: unknown): string {
  try {
    defineProcessor(decl as ProcessorDeclaration);
  } catch (err) {
    expect(err).toBeInstanceOf(PluginDefinitionError);
    return (err as Error).message;
  }
  throw new Error('expected defineProcessor to refuse');
}

describe('plugin API', () => {
  it('defines a processor: frozen, marked, guarantees kept', () => {
    const def = defineProcessor(base);
    expect(isDefinedProcessor(def)).toBe(true);
    expect(isDefinedProcessor({ ...def })).toBe(false);
    expect(Object.isFrozen(def)).toBe(true);
    expect(exactlyOnceSafe(def)).toBe(true);
    expect(exactlyOnceSafe({ ...def, sideEffects: true })).toBe(false);
  });

  it.each([
    [{ ...base, name: 'MyProc' }, /^name: must be snake_case/],
    [{ ...base, summary: '' }, /processor 'my_proc': summary: is required/],
    [{ ...base, outputSchema: undefined }, /processor 'my_proc': outputSchema: is required/],
    [{ ...base, deterministic: undefined }, /processor 'my_proc': deterministic: must be declared true or false/],
    [{ ...base, sideEffects: 'no' }, /processor 'my_proc': sideEffects: must be declared true or false/],
    [{ ...base, configSchema: { type: 'object', properties: { n: { type: 'integr' } } } }, /processor 'my_proc': configSchema: is not a valid JSON Schema/],
    [{ ...base, create: undefined }, /processor 'my_proc': create: must be a function/],
  ])('refuses a definition that does not hold together (%#)', (decl, message) => {
    expect(refusal(decl)).toMatch(message);
  });

  it('groups defined processors with definePlugin and refuses anything else', () => {
    const plugin = definePlugin({ processors: [defineProcessor(base)] });
    expect(plugin.processors.map((p) => p.name)).toEqual(['my_proc']);
    expect(() => definePlugin({ processors: [base as never] })).toThrow(/processors\[0\]: is not made by defineProcessor/);
  });

  it('registers the built-ins through defineProcessor, and names where a duplicate name was first registered', () => {
    expect(builtinDefinitions.every(isDefinedProcessor)).toBe(true);
    expect(builtinDefinitions.every(exactlyOnceSafe)).toBe(true);
    const registry = builtinProcessors();
    const withPlugin = registry.clone().register(defineProcessor(base), 'plugins[0] (./a.ts)');
    expect(registry.has('my_proc')).toBe(false);
    expect(withPlugin.sourceOf('my_proc')).toBe('plugins[0] (./a.ts)');
    expect(() => withPlugin.register(defineProcessor(base), 'plugins[1] (./b.ts)')).toThrow(new DuplicateProcessorError('my_proc', 'plugins[0] (./a.ts)'));
    expect(() => withPlugin.register(defineProcessor({ ...base, name: 'onnx_inference' }), 'plugins[1] (./b.ts)')).toThrow(/'onnx_inference' is already registered by the built-in processors/);
  });
});
