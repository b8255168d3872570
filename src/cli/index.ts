#!/usr/bin/env node
/**
 * The `keymesh` command: `keymesh demo`, `keymesh status`, `keymesh statechart`. Run
 * `keymesh --help` for the commands, their options and the exit codes.
 */
import { processIO } from './io.js';
import { launcherOf, runCli } from './program.js';

// A reader that stops early (`keymesh status | head -1`) closes the pipe: end quietly, as
// well-behaved commands do, instead of dying on an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit();
  });
}

runCli(process.argv.slice(2), processIO(), { launcher: launcherOf(process.env) }).then((code) => {
  process.exitCode = code;
});
