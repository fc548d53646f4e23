import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Command } from 'commander';

import { findTorchPython, PYTHON_HELP } from '../python';

interface ExportFlags {
  checkpoint: string;
  output: string;
  name?: string;
  description?: string;
  verify?: boolean;
  trustPickle?: boolean;
}

/** The exporter script shipped with the package. */
export function exporterScript(): string {
  return path.join(__dirname, '..', '..', 'scripts', 'export_videomae.py');
}

/** Adds `videomae export` to the program. */
export function register(program: Command): void {
  program
    .command('export')
    .description('Export a Hugging Face VideoMAE checkpoint to a model file (runs scripts/export_videomae.py with PyTorch)')
    .requiredOption('--checkpoint <dir>', 'checkpoint folder (config.json + model.safetensors or pytorch_model.bin)')
    .requiredOption('--output <file>', 'model file to write, e.g. model.pt')
    .option('--name <name>', 'model name stored in the file (default: the folder name)')
    .option('--description <text>', 'free-text description stored in the file')
    .option('--verify', 'compare the exported model with transformers (or a float64 reference)')
    .option('--trust-pickle', 'allow pytorch_model.bin pickles that run code (UNSAFE)')
    .addHelpText('after', '\nPython: VIDEOMAE_PYTHON, else python3 on PATH, else /usr/bin/python3; the first that can `import torch`.')
    .action((flags: ExportFlags) => run(flags));
}

async function run(flags: ExportFlags): Promise<void> {
  const { found, tried } = await findTorchPython();
  if (!found) {
    const list = tried.map((t) => `  ${t.command} (${t.source}): ${t.error}`).join('\n');
    throw new Error(`No Python with PyTorch found:\n${list}\n${PYTHON_HELP}.`);
  }
  const args = [exporterScript(), '--checkpoint', flags.checkpoint, '--output', flags.output];
  if (flags.name !== undefined) args.push('--name', flags.name);
  if (flags.description !== undefined) args.push('--description', flags.description);
  if (flags.verify) args.push('--verify');
  if (flags.trustPickle) args.push('--trust-pickle');
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(found.command, args, { stdio: 'inherit' });
    child.once('error', reject);
    // Like a shell: a child killed by a signal exits 128 + its number.
    child.once('close', (c, signal) => resolve(c ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
  process.exitCode = code;
}
