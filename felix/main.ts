#!/usr/bin/env node
// tern-node: the per-node agent. (Being built in issue 6.)
console.error('tern-node: not implemented yet');
process.exitCode = 1;
