// Graceful restart interop with frr in network namespaces (see graceful-restart-scenario.ts).
import { describeGracefulRestart } from './graceful-restart-scenario.js';

describeGracefulRestart('frr');
