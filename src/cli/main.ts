#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, ConfigErrors } from '../util/errors';
import { registerStackCommands } from './commands/stack';
import { registerPipelineCommands } from './commands/pipeline';
import { registerDemoCommands } from './commands/demo';
import { registerModelCommands } from './commands/models';
import { registerShadowCommands } from './commands/shadow';
import { registerFeatureCommands } from './commands/features';
import { registerStatusCommands } from './commands/status';
import { registerBackfillCommands } from './commands/backfill';
import { registerBanditCommands } from './commands/bandit';

const program = new Command();
program.name('tributary').description('Streaming prediction pipelines on Kafka: features, ONNX inference, shadow models').version('0.1.0');
registerStackCommands(program);
registerPipelineCommands(program);
registerDemoCommands(program);
registerModelCommands(program);
registerShadowCommands(program);
registerFeatureCommands(program);
registerStatusCommands(program);
registerBackfillCommands(program);
registerBanditCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Configuration problems print as they are (each names the bad field's path); others with their stack in debug.
  if (err instanceof ConfigError || err instanceof ConfigErrors) process.stderr.write(`error: ${err.message}\n`);
  else process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
  if (process.env.TRIBUTARY_LOG_LEVEL === 'debug') process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
