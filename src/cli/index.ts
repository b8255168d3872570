#!/usr/bin/env node
/**
 * The `keymesh` command: `keymesh demo`, `keymesh status`, `keymesh statechart`. Run
 * `keymesh --help` for the commands, their options and the exit codes.
 */
import { processIO } from './io.js';
import { runCli } from './program.js';

runCli(process.argv.slice(2), processIO(), {
  launcher: process.env.npm_lifecycle_event === undefined ? 'bin' : 'npm',
}).then((code) => {
  process.exitCode = code;
});
