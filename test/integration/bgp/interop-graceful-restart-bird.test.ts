// Graceful restart interop with bird in network namespaces (see graceful-restart-scenario.ts).
import { describeGracefulRestart } from './graceful-restart-scenario.js';

describeGracefulRestart('bird');
