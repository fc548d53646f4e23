// The prebuilt binaries' names. A prebuild lives at prebuilds/<platform>-<arch>/ (prebuildify's
// layout) and its name carries the libtorch it was built against, because libtorch's C++ ABI
// changes between minor versions and CUDA flavors:
//   videomae.node.napi.torch<major.minor>-<flavor>.node   e.g. videomae.node.napi.torch2.5-cu124.node
// Next to it, <same name>.json (PrebuildSidecar) records the details.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { majorMinor, type LibtorchInfo } from './libtorch';

const NAME = /^videomae\.node\.napi\.torch(\d+\.\d+)-([a-z0-9.]+)\.node$/;

/** What scripts/prebuild.js writes next to each prebuild. */
export interface PrebuildSidecar {
  /** The full libtorch version it was built against, e.g. '2.5.1'. */
  libtorchVersion: string;
  /** 'cpu', 'cu124', ... */
  flavor: string;
  /** Whether it was built with _GLIBCXX_USE_CXX11_ABI=1 (the official "cxx11-abi" archives, Debian). */
  cxx11Abi: boolean;
  napiVersion: number;
  platform: string;
  arch: string;
  /** Node version that built it; any Node with N-API `napiVersion` can load it. */
  node: string;
}

export interface Prebuild {
  path: string;
  /** 'major.minor' of the libtorch it needs. */
  torch: string;
  flavor: string;
}

/** The file name of a prebuild for libtorch `version` ('2.5.1') and `flavor` ('cpu'). */
export function prebuildName(version: string, flavor: string): string {
  const torch = majorMinor(version);
  if (!torch) throw new Error(`Expected a libtorch version like 2.5.1 but received '${version}'`);
  return `videomae.node.napi.torch${torch}-${flavor}.node`;
}

/** Parses a prebuild's file name; undefined for anything else. */
export function parsePrebuildName(name: string): Omit<Prebuild, 'path'> | undefined {
  const m = name.match(NAME);
  return m ? { torch: m[1], flavor: m[2] } : undefined;
}

/** prebuilds/<platform>-<arch> of the package at `root`. */
export function prebuildsDir(root: string): string {
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
}

/** The prebuilds shipped for this platform. Sync. */
export function listPrebuilds(root: string): Prebuild[] {
  const dir = prebuildsDir(root);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const tags = parsePrebuildName(name);
    return tags ? [{ path: path.join(dir, name), ...tags }] : [];
  });
}

/** Whether a prebuild was built for this libtorch: same major.minor and same flavor. */
export function prebuildMatches(prebuild: Omit<Prebuild, 'path'>, libtorch: LibtorchInfo): boolean {
  return prebuild.torch === majorMinor(libtorch.version) && prebuild.flavor === libtorch.flavor;
}
