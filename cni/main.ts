#!/usr/bin/env node
// The `tern` CNI plugin executable. (Being built in issue 5: answers VERSION only so far.)
const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
if (process.env.CNI_COMMAND === 'VERSION') {
  process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED }) + '\n');
} else {
  process.stdout.write(
    JSON.stringify({ cniVersion: '1.1.0', code: 4, msg: 'CNI_COMMAND not supported yet' }) + '\n',
  );
  process.exitCode = 1;
}
