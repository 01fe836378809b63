#!/usr/bin/env node
// tern-node: the per-node agent. Configuration: flags > TERN_* environment > --config file > defaults.
import { parseArgs } from 'node:util';
import { flagNameOf, loadConfig } from '../model/config.js';
import { createLogger } from '../model/log.js';
import { Agent } from './agent.js';
import { agentConfigSchema } from './config.js';

const USAGE = `usage: tern-node [--config FILE] [--${Object.keys(agentConfigSchema.shape).map(flagNameOf).join(' VALUE] [--')} VALUE]`;

async function main(): Promise<void> {
  const options = Object.fromEntries([
    ['config', { type: 'string' as const }],
    ['help', { type: 'boolean' as const }],
    ...Object.keys(agentConfigSchema.shape).map((k) => [flagNameOf(k), { type: 'string' as const }]),
  ]);
  let parsed;
  try {
    parsed = parseArgs({ options, strict: true, allowPositionals: false });
  } catch (e) {
    console.error(`tern-node: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const { config: file, help, ...flags } = parsed.values as Record<string, string | boolean | undefined>;
  if (help) {
    console.log(USAGE);
    return;
  }
  let config;
  try {
    config = loadConfig(agentConfigSchema, {
      flags: flags as Record<string, string>,
      ...(typeof file === 'string' ? { file } : {}),
    });
  } catch (e) {
    console.error(`tern-node: ${(e as Error).message}`);
    process.exit(2);
  }
  const log = createLogger('tern-node').child({ node: config.nodeName });
  const agent = new Agent(config, log);
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping; routes and pods stay in place');
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (e) => log.error({ err: e }, 'unhandled rejection'));
  try {
    await agent.start();
  } catch (e) {
    log.fatal({ err: e }, 'agent failed to start');
    await agent.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
