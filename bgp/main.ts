#!/usr/bin/env node
// tern-bgp: tern's BGP speaker run alone (route reflector, interop tests). (Being built in issue 3.)
console.error('tern-bgp: not implemented yet');
process.exitCode = 1;
