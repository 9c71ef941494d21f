#!/usr/bin/env node
import { registerStackCommands } from './commands/stack';
import { registerPipelineCommands } from './commands/pipeline';
import { registerDemoCommands } from './commands/demo';
import { registerModelCommands } from './commands/models';
import { registerShadowCommands } from './commands/shadow';
import { registerFeatureCommands } from './commands/features';
import { registerStatusCommands } from './commands/status';
import { registerBackfillCommands } from './commands/backfill';
import { registerBanditCommands } from './commands/bandit';
import { registerSetupCommands } from './commands/setup';
import { registerGatewayCommands } from './commands/gateway';
import { createProgram, runProgram } from './program';

const program = createProgram();
program.description('Streaming prediction pipelines on Kafka: features, ONNX inference, shadow models').version('0.1.0');
registerSetupCommands(program);
registerStackCommands(program);
registerPipelineCommands(program);
registerDemoCommands(program);
registerModelCommands(program);
registerShadowCommands(program);
registerFeatureCommands(program);
registerStatusCommands(program);
registerBackfillCommands(program);
registerBanditCommands(program);
registerGatewayCommands(program);
runProgram(program);
