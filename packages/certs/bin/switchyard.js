#!/usr/bin/env node
// The `switchyard` command. npm links a package's bins when it installs, which in this repository
// is before anything is built, and tsc writes dist/bin.js without the execute bit: this file is
// in the checkout from the start, executable, and runs the built CLI.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    'switchyard: not built yet; run `npm run build` (or `npm run demo`) at the repository root\n',
  );
  process.exit(1);
}
await import(cli.href);
