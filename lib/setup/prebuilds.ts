// The prebuilt binaries. libtorch's C++ ABI changes between minor versions and CUDA flavors, so
// each flavor has a folder of its own, made by prebuildify (scripts/prebuild.js) and searched by
// node-gyp-build:
//   prebuilds/<flavor>/prebuilds/<platform>-<arch>/node.napi.glibc.node    e.g. flavor torch2.14-cu130
//   prebuilds/<flavor>/prebuilds/<platform>-<arch>/node.napi.glibc.json    PrebuildSidecar
// node-gyp-build ignores tags it does not know in file names, so two flavors in one folder would
// tie: one folder per flavor keeps its choice to the things it does know (platform, arch, libc).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { majorMinor, type LibtorchInfo } from './libtorch';

// node-gyp-build ships no types; path() is the one function used.
const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };

const TAG = /^torch(\d+\.\d+)-([a-z0-9.]+)$/;

/** What scripts/prebuild.js writes next to each prebuild. */
export interface PrebuildSidecar {
  /** The flavor, e.g. 'torch2.13-cpu'. */
  tag: string;
  /** The full libtorch version it was compiled and test-loaded against, e.g. '2.13.0'. */
  libtorchVersion: string;
  /** 'cpu', 'cu130', ... */
  flavor: string;
  /** Whether it was built with _GLIBCXX_USE_CXX11_ABI=1 (every official build since 2.7, Debian). */
  cxx11Abi: boolean;
  napiVersion: number;
  platform: string;
  arch: string;
  /** Node version that built it; any Node with N-API `napiVersion` can load it. */
  node: string;
}

/** One flavor folder of the package. */
export interface Flavor {
  /** 'torch2.13-cpu'. */
  tag: string;
  /** 'major.minor' of the libtorch it needs. */
  torch: string;
  /** 'cpu', 'cu130', ... */
  flavor: string;
  /** prebuilds/<tag> of the package. */
  dir: string;
}

/** 'torch2.13-cpu' for libtorch `version` ('2.13.0') and `flavor` ('cpu'). */
export function flavorTag(version: string, flavor: string): string {
  const torch = majorMinor(version);
  if (!torch) throw new Error(`Expected a libtorch version like 2.13.0 but received '${version}'`);
  return `torch${torch}-${flavor}`;
}

/** Parses a flavor tag; undefined for anything else. */
export function parseFlavorTag(tag: string): { torch: string; flavor: string } | undefined {
  const m = tag.match(TAG);
  return m ? { torch: m[1], flavor: m[2] } : undefined;
}

/** prebuilds/ of the package at `root`: one folder per flavor. */
export function flavorsDir(root: string): string {
  return path.join(root, 'prebuilds');
}

/** The flavor folders of the package at `root`, sorted by tag. Sync. */
export function listFlavors(root: string): Flavor[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(flavorsDir(root)).sort();
  } catch {
    return [];
  }
  return names.flatMap((tag) => {
    const parsed = parseFlavorTag(tag);
    return parsed ? [{ tag, ...parsed, dir: path.join(flavorsDir(root), tag) }] : [];
  });
}

/**
 * The binary node-gyp-build picks in a flavor folder for this platform, arch and libc, or
 * undefined when the folder has none. Sync.
 */
export function flavorBinary(flavor: Flavor): string | undefined {
  try {
    const file = nodeGypBuild.path(flavor.dir);
    // node-gyp-build also looks next to the node executable; only the flavor's own folder counts.
    return file.startsWith(flavor.dir + path.sep) ? file : undefined;
  } catch {
    return undefined;
  }
}

/** The sidecar of a prebuild, or undefined. */
export function readSidecar(binary: string): PrebuildSidecar | undefined {
  try {
    return JSON.parse(fs.readFileSync(binary.replace(/\.node$/, '.json'), 'utf8')) as PrebuildSidecar;
  } catch {
    return undefined;
  }
}

/** Whether a flavor was built for this libtorch: same major.minor and same flavor. */
export function flavorMatches(flavor: Pick<Flavor, 'torch' | 'flavor'>, libtorch: LibtorchInfo): boolean {
  return flavor.torch === majorMinor(libtorch.version) && flavor.flavor === libtorch.flavor;
}

/** A source build in build/Release (node-gyp-build's first choice), or undefined. Sync. */
export function sourceBuild(root: string): string | undefined {
  try {
    const file = nodeGypBuild.path(root);
    return file.startsWith(path.join(root, 'build') + path.sep) ? file : undefined;
  } catch {
    return undefined;
  }
}
