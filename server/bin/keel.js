#!/usr/bin/env node
// The `keel` command. It runs server/dist, the JavaScript compiled from server/src (see build.js),
// compiling it first when it is missing or older than the sources. Without a TypeScript compiler
// (an install without devDependencies and no usable dist), it runs the sources through tsx.
import { ensureBuilt } from './build.js';

if ((await ensureBuilt()) === 'dist') {
  // Stack traces name server/src files and lines, through the maps the build writes beside dist.
  process.setSourceMapsEnabled(true);
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
