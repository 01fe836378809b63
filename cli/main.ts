#!/usr/bin/env node
// ternctl: the operator CLI. (Verbs arrive with the issues that need them.)
console.error('usage: ternctl <command>');
process.exitCode = 2;
