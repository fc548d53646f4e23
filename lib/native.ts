import * as path from 'node:path';

import type { NativeBinding } from '../binding';
import { VideoMAEError } from './errors';

let cached: NativeBinding | undefined;

/** Where the addon was loaded from. */
export let nativePath: string | undefined;

/**
 * Loads the addon once. Throws VideoMAEError VMAE_NATIVE_UNAVAILABLE with the possible fixes.
 */
export function native(): NativeBinding {
  if (cached) return cached;
  const root = path.join(__dirname, '..');
  // VIDEOMAE_NATIVE_PATH picks a specific build, e.g. the sanitizer build in build-asan/.
  const candidate = process.env.VIDEOMAE_NATIVE_PATH || path.join(root, 'build', 'Release', 'videomae.node');
  try {
    cached = require(candidate) as NativeBinding;
    nativePath = candidate;
    return cached;
  } catch (err) {
    throw new VideoMAEError(
      'VMAE_NATIVE_UNAVAILABLE',
      `Could not load the videomae-node addon (${candidate}): ${(err as Error).message}\n` +
        'Possible solutions:\n' +
        '- Build it from source: npm run build (needs cmake, a C++17 compiler and libtorch)\n' +
        '- Get libtorch: npx videomae setup, or apt-get install libtorch-dev libopenblas0-pthread\n' +
        '- Run `npx videomae doctor` for a full diagnosis',
      { cause: err },
    );
  }
}
