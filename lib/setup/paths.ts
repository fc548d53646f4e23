import * as os from 'node:os';
import * as path from 'node:path';

/** The package's folder: the one holding package.json, lib/ and prebuilds/. */
export function packageRoot(): string {
  return path.join(__dirname, '..', '..');
}

/**
 * The per-user cache for downloads and installed libtorch folders:
 * VIDEOMAE_CACHE_DIR, else $XDG_CACHE_HOME/videomae-node, else ~/.cache/videomae-node
 * (~/Library/Caches on macOS, %LOCALAPPDATA% on Windows).
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIDEOMAE_CACHE_DIR) return path.resolve(env.VIDEOMAE_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'videomae-node');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'videomae-node');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return path.join(env.LOCALAPPDATA, 'videomae-node', 'Cache');
  return path.join(os.homedir(), '.cache', 'videomae-node');
}

/**
 * `<package>/libtorch`: where `videomae setup` links the libtorch it installs. CMake's discovery
 * looks there second, and the binaries' RPATH ($ORIGIN/../../libtorch/lib) points there.
 */
export function defaultLinkPath(): string {
  return path.join(packageRoot(), 'libtorch');
}
