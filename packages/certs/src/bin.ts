#!/usr/bin/env node
// The `switchyard` command. Only `certs` lives here for now; when another package brings a
// command, this dispatcher moves to a package of its own and imports runCertsCli.
import { CERTS_USAGE, CliUsageError, runCertsCli } from './cli.js';

const [group, ...args] = process.argv.slice(2);
try {
  if (group === '--help' || group === '-h') {
    process.stdout.write(CERTS_USAGE);
  } else if (group === 'certs') {
    await runCertsCli(args, process);
  } else {
    throw new CliUsageError(
      group === undefined ? 'missing command' : `unknown command ${JSON.stringify(group)}`,
    );
  }
} catch (error) {
  process.stderr.write(`switchyard: ${error instanceof Error ? error.message : String(error)}\n`);
  if (error instanceof CliUsageError) process.stderr.write(`\n${CERTS_USAGE}`);
  process.exitCode = error instanceof CliUsageError ? 2 : 1;
}
