// Graceful restart interop with gobgp in network namespaces (see graceful-restart-scenario.ts).
import { describeGracefulRestart } from './graceful-restart-scenario.js';

describeGracefulRestart('gobgp');
