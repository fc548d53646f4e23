#!/usr/bin/env node
// The `videomae` command line. Each command lives in lib/commands/<name>.ts.
import { Command } from 'commander';

import * as classify from './commands/classify';
import * as doctor from './commands/doctor';
import * as embed from './commands/embed';
import * as enqueue from './commands/enqueue';
import * as exportCmd from './commands/export';
import * as info from './commands/info';
import * as setup from './commands/setup';
import * as watch from './commands/watch';
import * as worker from './commands/worker';

const { version } = require('../package.json') as { version: string };

const program = new Command('videomae')
  .description('VideoMAE video classification and embeddings for Node.js, through libtorch')
  .version(version)
  .showHelpAfterError();

for (const command of [classify, embed, watch, exportCmd, info, setup, doctor, worker, enqueue]) command.register(program);

program.parseAsync(process.argv).catch((err: Error & { code?: string }) => {
  process.stderr.write(`videomae: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exitCode = 1;
});
