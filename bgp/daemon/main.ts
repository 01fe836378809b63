#!/usr/bin/env node
// tern-bgp: tern's BGP speaker run alone (route reflector, interop tests, lab).
//   tern-bgp --config file.yaml|json [--control /path/to.sock]
// SIGHUP re-reads the file: peers and originated prefixes follow it (see reload.ts).
import { readFile, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseDaemonConfig, type DaemonConfig } from './config.js';
import { DEFAULT_CONTROL_SOCKET } from './control-client.js';
import { startControlServer } from './control-server.js';
import { applyReload } from './reload.js';
import { BgpSpeaker } from '../speaker.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string', short: 'c' }, control: { type: 'string' } },
  });
  if (!values.config) {
    console.error('usage: tern-bgp --config file.yaml|json [--control socket]');
    process.exitCode = 2;
    return;
  }
  let config: DaemonConfig = parseDaemonConfig(await readFile(values.config, 'utf8'), values.config);
  const logger = pino({ level: config.logLevel, base: { component: 'tern-bgp' } });
  const speaker = new BgpSpeaker({ ...config.speaker, logger });
  for (const p of config.peers) speaker.addPeer(p);
  for (const { prefix, ...attrs } of config.originate) speaker.originate(prefix, attrs);
  await speaker.start();
  const socketPath = values.control ?? config.controlSocket ?? DEFAULT_CONTROL_SOCKET;
  const control = await startControlServer(speaker, socketPath);
  logger.info(
    { asn: config.speaker.asn, routerId: config.speaker.routerId, peers: config.peers.length, socketPath },
    'tern-bgp started',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await speaker.stop();
    await new Promise<void>((resolve) => control.close(() => resolve()));
    await rm(socketPath, { force: true });
    // Let the Cease NOTIFICATIONs leave before exiting.
    setTimeout(() => process.exit(0), 300).unref();
  };
  const reload = async () => {
    try {
      const next = parseDaemonConfig(await readFile(values.config!, 'utf8'), values.config);
      const summary = applyReload(speaker, config, next);
      config = next;
      logger.info(summary, 'configuration reloaded');
      if (summary.needsRestart)
        logger.warn({}, 'speaker-wide settings changed: they apply at the next start');
    } catch (err) {
      // A bad file leaves the running configuration as it was.
      logger.error({ err: (err as Error).message }, 'configuration not reloaded');
    }
  };
  process.on('SIGHUP', () => void reload());
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(`tern-bgp: ${(err as Error).message}`);
  process.exit(1);
});
