import type { Command } from 'commander';

/** Adds `videomae export` to the program. (Being written; see the issue tracker.) */
export function register(program: Command): void {
  void program;
}
