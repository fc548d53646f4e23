// The libtorch archives `videomae setup` may install, pinned by version and sha256.
// The prebuilt binaries shipped in the package are built against LIBTORCH_VERSION, one per flavor:
// bump both together.
import { z } from 'zod';

import { VideoMAEError } from '../errors';

/** The libtorch release setup installs. */
export const LIBTORCH_VERSION = '2.5.1';

/** The base URL VIDEOMAE_LIBTORCH_MIRROR replaces. */
export const DEFAULT_MIRROR = 'https://download.pytorch.org/libtorch';

export interface ArchivePin {
  /** 'cpu' or 'cu<major><minor>'. */
  flavor: string;
  /** The libtorch version inside. */
  version: string;
  /** Relative to the mirror, URL-encoded as the server spells it. */
  path: string;
  /**
   * Lowercase hex sha256 of the archive, or null when nobody has verified it yet. setup refuses an
   * archive it cannot verify: with null here the user must pass --sha256 or use --from.
   */
  sha256: string | null;
}

// NOT VERIFIED: the sha256 of the official archives could not be computed when these pins were
// written (no access to download.pytorch.org). Fill each one from an archive downloaded over HTTPS
// from download.pytorch.org, cross-checked from a second network, before a release relies on them.
const UNVERIFIED = null;

const linux = (flavor: string): ArchivePin => ({
  flavor,
  version: LIBTORCH_VERSION,
  path: `${flavor}/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2B${flavor}.zip`,
  sha256: UNVERIFIED,
});

/** Pinned archives per `${process.platform}-${process.arch}`. */
export const PINS: Readonly<Record<string, readonly ArchivePin[]>> = {
  'linux-x64': [linux('cpu'), linux('cu118'), linux('cu121'), linux('cu124')],
};

const Override = z.record(
  z.string().regex(/^(cpu|cu\d{3,})$/),
  z.strictObject({
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional(),
    path: z.string().min(1).optional(),
    version: z.string().regex(/^\d+\.\d+\.\d+$/).optional(),
  }),
);

/**
 * The pins for this platform, with VIDEOMAE_SETUP_PINS_JSON applied: a JSON object from flavor to
 * { sha256?, path?, version? } that replaces those fields or adds a flavor. It is meant for mirrors
 * that host their own archives, and for tests. Throws VMAE_SETUP_FAILED on malformed JSON.
 */
export function platformPins(env: NodeJS.ProcessEnv = process.env, key = `${process.platform}-${process.arch}`): ArchivePin[] {
  const pins = new Map((PINS[key] ?? []).map((p) => [p.flavor, { ...p }]));
  if (env.VIDEOMAE_SETUP_PINS_JSON) {
    let parsed: z.infer<typeof Override>;
    try {
      parsed = Override.parse(JSON.parse(env.VIDEOMAE_SETUP_PINS_JSON));
    } catch (err) {
      throw new VideoMAEError('VMAE_SETUP_FAILED',
        `VIDEOMAE_SETUP_PINS_JSON is not valid: ${(err as Error).message}\n` +
          'Expected e.g. {"cpu": {"sha256": "<64 hex digits>", "path": "cpu/libtorch-....zip"}}', { cause: err });
    }
    for (const [flavor, o] of Object.entries(parsed)) {
      const base = pins.get(flavor);
      const version = o.version ?? base?.version ?? LIBTORCH_VERSION;
      const path = o.path ?? base?.path ?? `${flavor}/libtorch-cxx11-abi-shared-with-deps-${version}%2B${flavor}.zip`;
      pins.set(flavor, { flavor, version, path, sha256: o.sha256?.toLowerCase() ?? base?.sha256 ?? null });
    }
  }
  return [...pins.values()];
}

/** 'cu124' -> 12.4; undefined for 'cpu'. */
export function cudaOf(flavor: string): number | undefined {
  const m = flavor.match(/^cu(\d+)(\d)$/);
  return m ? Number(`${m[1]}.${m[2]}`) : undefined;
}

/** The CUDA version the driver supports, from `nvidia-smi`'s header ("CUDA Version: 12.4"). */
export function parseDriverCuda(nvidiaSmiOutput: string): number | undefined {
  const m = nvidiaSmiOutput.match(/CUDA Version:\s*(\d+)\.(\d+)/);
  return m ? Number(`${m[1]}.${m[2]}`) : undefined;
}

/**
 * Picks the archive for `--cuda`: 'cpu'; a version such as '12.4' (the newest pinned CUDA flavor not
 * newer than it); or 'auto' with `driverCuda` from nvidia-smi (the same rule, or cpu without a
 * driver). Returns the pin and a note explaining the choice. Throws VMAE_SETUP_FAILED.
 */
export function choosePin(request: string, pins: readonly ArchivePin[], driverCuda: number | undefined): { pin: ArchivePin; note: string } {
  const byFlavor = (flavor: string): ArchivePin => {
    const pin = pins.find((p) => p.flavor === flavor);
    if (!pin) {
      throw new VideoMAEError('VMAE_SETUP_FAILED',
        `No pinned libtorch archive for ${flavor} on ${process.platform}-${process.arch} ` +
          `(pinned: ${pins.map((p) => p.flavor).join(', ') || 'none'}). Install one with --from <folder|zip>.`);
    }
    return pin;
  };
  const newestUpTo = (cuda: number): ArchivePin | undefined =>
    pins
      .filter((p) => (cudaOf(p.flavor) ?? Infinity) <= cuda + 1e-9)
      .sort((a, b) => (cudaOf(b.flavor) ?? 0) - (cudaOf(a.flavor) ?? 0))[0];

  if (request === 'cpu') return { pin: byFlavor('cpu'), note: 'CPU build (--cuda cpu)' };
  if (request === 'auto') {
    if (driverCuda === undefined) return { pin: byFlavor('cpu'), note: 'CPU build: no NVIDIA driver found (nvidia-smi)' };
    const pin = newestUpTo(driverCuda);
    if (!pin) return { pin: byFlavor('cpu'), note: `CPU build: the driver's CUDA ${driverCuda} is older than every pinned CUDA build` };
    return { pin, note: `${pin.flavor}: the newest pinned build the driver's CUDA ${driverCuda} runs` };
  }
  if (!/^\d+\.\d+$/.test(request)) {
    throw new VideoMAEError('VMAE_SETUP_FAILED', `Expected 'auto', 'cpu' or a CUDA version such as 12.4 for --cuda but received '${request}'`);
  }
  const cuda = Number(request);
  const pin = newestUpTo(cuda);
  if (!pin) {
    throw new VideoMAEError('VMAE_SETUP_FAILED',
      `No pinned libtorch archive runs on CUDA ${request} (pinned: ${pins.map((p) => p.flavor).join(', ')})`);
  }
  const exact = cudaOf(pin.flavor) === cuda;
  return { pin, note: exact ? `${pin.flavor} (--cuda ${request})` : `${pin.flavor}: the newest pinned build for CUDA ${request}` };
}
