// Where the CLI finds a model when none is given: the demo model shipped in the package.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { VideoMAEError } from './errors';

/** The embedded demo model file (it may be missing from a source checkout). */
export function defaultModelPath(): string {
  return path.join(__dirname, '..', 'models', 'demo', 'videomae-demo-motion.pt');
}

/** defaultModelPath(), or throws VMAE_MODEL_LOAD_FAILED saying how to get a model. */
export function requireDefaultModel(): string {
  const file = defaultModelPath();
  if (!fs.existsSync(file)) {
    throw new VideoMAEError('VMAE_MODEL_LOAD_FAILED',
      `No model was given and the demo model is missing (${file}). ` +
        'Pass a model file (--model <file.pt> on the command line); make one with ' +
        '`videomae export --checkpoint <folder> --output model.pt`');
  }
  return file;
}
