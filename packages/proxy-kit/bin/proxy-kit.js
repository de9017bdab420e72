#!/usr/bin/env -S node --max-semi-space-size=4
// The V8 flags of PROXY_KIT_NODE_FLAGS (src/node-flags.ts), which must stay the same as these.
// The `proxy-kit` command. npm links a package's bins when it installs, which in this repository
// is before anything is built: a bin pointing into dist/ would not be linked at all (and
// `npx proxy-kit` would then look for a "proxy-kit" package in the registry). This file is in the
// checkout from the start and runs the built CLI.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    'proxy-kit: not built yet; run `npm run build` (or `npm run demo`) at the repository root\n',
  );
  process.exit(1);
}
await import(cli.href);
