// What a libtorch folder holds (version, CUDA flavor), and where the dynamic linker will look for
// one. The loader uses this to pick a prebuilt binary; scripts/prebuild.js uses the same code to
// tag the binary it builds, so the two always agree.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A folder holding libtorch's shared libraries, and what it is. */
export interface LibtorchInfo {
  /** The folder with libc10 and libtorch_cpu. */
  libDir: string;
  /** e.g. '2.5.1' or '1.13.0'; undefined when nothing in or next to the folder says. */
  version?: string;
  /** 'cpu', 'cu124', 'rocm6.2', or 'cuda' (CUDA of an unknown version). */
  flavor: string;
  /** What told us the version: 'build-version', 'torch/version.py', 'soname' or 'version.h'. */
  versionFrom?: string;
}

/** A libtorch the linker can reach, and why: the order is the linker's order. */
export interface LibtorchLocation {
  source: 'LD_LIBRARY_PATH' | 'package ./libtorch' | 'system';
  info: LibtorchInfo;
}

const MARKER = /^(lib)?(torch_cpu|c10)\.(so(\.[\d.]+)?|dylib|dll)$/;

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** '2.5.1' -> '2.5'. The C++ ABI of libtorch changes between minor versions. */
export function majorMinor(version: string | undefined): string | undefined {
  return version?.match(/^(\d+\.\d+)/)?.[1];
}

/**
 * Describes the libtorch in `libDir`, or undefined when the folder holds none. Sync.
 * The version comes from, in order: the official archives' `build-version` file ('2.5.1+cu124'),
 * pip torch's `torch/version.py`, a versioned soname (Debian: libtorch_cpu.so.1.13.0), or the
 * headers' TORCH_VERSION in ../include.
 */
export function describeLibtorch(libDir: string): LibtorchInfo | undefined {
  let files: string[];
  try {
    files = fs.readdirSync(libDir);
  } catch {
    return undefined;
  }
  if (!files.some((f) => MARKER.test(f))) return undefined;
  const root = path.join(libDir, '..');
  let raw: string | undefined;
  let versionFrom: string | undefined;
  const buildVersion = read(path.join(root, 'build-version'))?.trim();
  const versionPy = read(path.join(root, 'version.py'))?.match(/__version__\s*=\s*['"]([^'"]+)['"]/)?.[1];
  const soname = files
    .map((f) => f.match(/^libtorch_cpu\.so\.(\d+\.\d+(?:\.\d+)?)$/)?.[1])
    .filter((v): v is string => !!v)
    .sort((a, b) => b.length - a.length)[0];
  const header = read(path.join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'))
    ?.match(/TORCH_VERSION\s*\\?\s*"([^"]+)"/)?.[1];
  if (buildVersion) [raw, versionFrom] = [buildVersion, 'build-version'];
  else if (versionPy) [raw, versionFrom] = [versionPy, 'torch/version.py'];
  else if (soname) [raw, versionFrom] = [soname, 'soname'];
  else if (header) [raw, versionFrom] = [header, 'version.h'];
  const [version, suffix] = raw ? raw.split('+') : [undefined, undefined];
  let flavor: string;
  if (suffix && /^(cpu|cu\d+|rocm[\d.]+)$/.test(suffix)) flavor = suffix;
  else if (files.some((f) => /^(lib)?torch_cuda\./.test(f))) flavor = 'cuda';
  else if (files.some((f) => /^(lib)?torch_hip\./.test(f))) flavor = 'rocm';
  else flavor = 'cpu';
  return { libDir, version, flavor, versionFrom };
}

/** The folders the system's dynamic linker searches after LD_LIBRARY_PATH and RUNPATH. */
function systemLibDirs(): string[] {
  const dirs: string[] = [];
  const conf = (file: string): void => {
    for (const line of (read(file) ?? '').split('\n')) {
      const dir = line.replace(/#.*/, '').trim();
      if (dir.startsWith('/')) dirs.push(dir);
    }
  };
  conf('/etc/ld.so.conf');
  try {
    for (const f of fs.readdirSync('/etc/ld.so.conf.d').filter((f) => f.endsWith('.conf')).sort()) {
      conf(path.join('/etc/ld.so.conf.d', f));
    }
  } catch {
    // no ld.so.conf.d: the defaults below still apply
  }
  const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch as string];
  if (multiarch) dirs.push(`/usr/local/lib/${multiarch}`, `/lib/${multiarch}`, `/usr/lib/${multiarch}`);
  dirs.push('/usr/local/lib', '/usr/lib64', '/lib64', '/usr/lib', '/lib');
  return dirs;
}

/**
 * Every libtorch the dynamic linker can reach from a binary in prebuilds/<platform>-<arch>/ of the
 * package at `root`, in the linker's order: LD_LIBRARY_PATH, then RUNPATH ($ORIGIN/../../libtorch/lib,
 * i.e. `<root>/libtorch/lib`, which `videomae setup` links), then the system's folders. Sync.
 */
export function findLibtorch(root: string, env: NodeJS.ProcessEnv = process.env): LibtorchLocation[] {
  const seen = new Set<string>();
  const found: LibtorchLocation[] = [];
  const visit = (dir: string, source: LibtorchLocation['source']): void => {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    const info = describeLibtorch(dir);
    if (info) found.push({ source, info });
  };
  const ldPath = process.platform === 'darwin' ? env.DYLD_LIBRARY_PATH : env.LD_LIBRARY_PATH;
  for (const dir of (ldPath ?? '').split(path.delimiter).filter(Boolean)) visit(dir, 'LD_LIBRARY_PATH');
  visit(path.join(root, 'libtorch', 'lib'), 'package ./libtorch');
  if (process.platform === 'linux') for (const dir of systemLibDirs()) visit(dir, 'system');
  return found;
}

/** libtorch's own libraries, as a process maps them (c10, torch, torch_cpu, torch_cuda, c10_cuda, ...). */
const MAPPED = /^(\S+\/)(lib(?:c10|torch)(?:_[a-z0-9_]+)?\.so[^\s/]*)\s*$/;

/**
 * The libtorch libraries mapped into a process, from the text of /proc/<pid>/maps: every file and
 * every folder they come from (more than one folder means a mix of libtorch builds).
 */
export function mappedLibtorch(maps: string): { dirs: string[]; files: string[] } {
  const files = new Set<string>();
  for (const line of maps.split('\n')) {
    const file = line.match(/\s(\/\S+)\s*$/)?.[1];
    if (file && MAPPED.test(file) && !/libtorch_python/.test(file)) files.add(file);
  }
  const list = [...files].sort();
  return { dirs: [...new Set(list.map((f) => path.dirname(f)))], files: list };
}

/** The folder of the libtorch mapped into a process, from the text of /proc/<pid>/maps. */
export function libDirFromMaps(maps: string): string | undefined {
  const file =
    maps.match(/(\/\S*\/libtorch_cpu\.so[^\s/]*)\s*$/m)?.[1] ?? maps.match(/(\/\S*\/libc10\.so[^\s/]*)\s*$/m)?.[1];
  return file ? path.dirname(file) : undefined;
}

/** The libtorch this process has mapped (Linux only; empty elsewhere or when none). */
export function loadedLibtorch(): { dirs: string[]; files: string[] } {
  const maps = read('/proc/self/maps');
  return maps ? mappedLibtorch(maps) : { dirs: [], files: [] };
}

/** The folder of the libtorch this process has loaded (Linux only; undefined elsewhere or when none). */
export function loadedLibDir(): string | undefined {
  const maps = read('/proc/self/maps');
  return maps ? libDirFromMaps(maps) : undefined;
}
