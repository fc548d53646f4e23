import type { Command } from 'commander';

import { diagnose, formatReport } from '../doctor';

/** Adds `videomae doctor` to the program. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description('Check the addon, libtorch, GPU, ffmpeg, Python and the model; print the fix for each problem')
    .option('--model <file>', 'check this model instead of the demo model')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { model?: string; json?: boolean }) => {
      const report = await diagnose({ model: flags.model });
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      // Non-zero when classification cannot work (the addon does not load, or the model is missing).
      if (!report.ok) process.exitCode = 1;
    });
}
