// The libtorch builds `videomae setup` installs, as the official torch wheels that carry them, each
// file pinned by name, size and sha256. A wheel is a zip whose torch/ folder is a complete libtorch
// (lib/, include/, share/cmake/Torch); a CUDA torch also loads the nvidia-* wheels it depends on.
// The hashes were computed from the published files (sha256sum; they equal the #sha256= of the
// package indexes). The prebuilt binaries in prebuilds/ are built against exactly these versions:
// bump both together (npm run prebuild:all).
import { VideoMAEError } from '../errors';

/** One published file. */
export interface WheelPin {
  /** The file name, as published. */
  file: string;
  /** Lowercase hex sha256 of the file. */
  sha256: string;
  /** Bytes. */
  size: number;
  /** The PEP 503 "simple" index that lists it, and its project name there. */
  index: string;
  project: string;
}

/** A libtorch that setup installs: the torch wheel and, for CUDA, the wheels its libraries load. */
export interface LibtorchPin {
  /** 'cpu' or 'cu<major><minor>', as torch's version suffix spells it. */
  flavor: string;
  /** The torch version inside. */
  version: string;
  /** The prebuild flavor that runs on it, e.g. 'torch2.13-cpu'. */
  tag: string;
  torch: WheelPin;
  /** nvidia-* wheels, unpacked beside torch/ so that its RPATH ($ORIGIN/../../nvidia/<x>/lib) finds them. */
  deps: WheelPin[];
  /** What the libtorch needs from the system that no wheel here provides. */
  system?: string;
}

const PYTORCH_CPU = 'https://download.pytorch.org/whl/cpu';
const PYPI = 'https://pypi.org/simple';

const pypi = (project: string, file: string, size: number, sha256: string): WheelPin => ({ file, sha256, size, index: PYPI, project });

/** Pinned builds per `${process.platform}-${process.arch}`. */
export const PINS: Readonly<Record<string, readonly LibtorchPin[]>> = {
  'linux-x64': [
    {
      flavor: 'cpu',
      version: '2.13.0',
      tag: 'torch2.13-cpu',
      torch: {
        file: 'torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl',
        sha256: '6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b',
        size: 191794682,
        index: PYTORCH_CPU,
        project: 'torch',
      },
      deps: [],
    },
    {
      flavor: 'cu130',
      version: '2.14.1',
      tag: 'torch2.14-cu130',
      torch: pypi('torch', 'torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl', 554581699,
        '305a61f61f35f128579f299c5bd33d475f6a01c6307336139632e30856c4854d'),
      // torch 2.14.1's Requires-Dist on Linux: cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,
      // cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3, nvidia-cudnn-cu13, -cusparselt-cu13, -nccl-cu13,
      // -nvshmem-cu13. cudart is the CUDA runtime every CUDA install has (see `system`).
      deps: [
        pypi('nvidia-cublas', 'nvidia_cublas-13.1.1.3-py3-none-manylinux_2_27_x86_64.whl', 423138758,
          '37936a16db8fe4ac1f065c2139360608a543a09275cb1a1af612e08cfa065436'),
        pypi('nvidia-cuda-cupti', 'nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl', 10715597,
          '4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8'),
        pypi('nvidia-cuda-nvrtc', 'nvidia_cuda_nvrtc-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl', 90215200,
          'ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575'),
        pypi('nvidia-cudnn-cu13', 'nvidia_cudnn_cu13-9.24.0.43-py3-none-manylinux_2_27_x86_64.whl', 553099438,
          '71f181cd810e90f9b6023b01186fe82d13d65f0ec098581ee201d39fad769e4b'),
        pypi('nvidia-cufft', 'nvidia_cufft-12.0.0.61-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl', 214085489,
          '6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3'),
        pypi('nvidia-cufile', 'nvidia_cufile-1.15.1.6-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl', 1223672,
          '08a3ecefae5a01c7f5117351c64f17c7c62efa5fffdbe24fc7d298da19cd0b44'),
        pypi('nvidia-curand', 'nvidia_curand-10.4.0.35-py3-none-manylinux_2_27_x86_64.whl', 59544258,
          '1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc'),
        pypi('nvidia-cusolver', 'nvidia_cusolver-12.0.4.66-py3-none-manylinux_2_27_x86_64.whl', 200941980,
          '0a759da5dea5c0ea10fd307de75cdeb59e7ea4fcb8add0924859b944babf1112'),
        pypi('nvidia-cusparse', 'nvidia_cusparse-12.6.3.3-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl', 145942937,
          '2b3c89c88d01ee0e477cb7f82ef60a11a4bcd57b6b87c33f789350b59759360b'),
        pypi('nvidia-cusparselt-cu13', 'nvidia_cusparselt_cu13-0.8.1-py3-none-manylinux2014_x86_64.whl', 170148586,
          '786ce87568c303fadb5afcc7102d454cd3040d75f6f8626f5db460d1871f4dd0'),
        pypi('nvidia-nccl-cu13', 'nvidia_nccl_cu13-2.30.7-py3-none-manylinux_2_18_x86_64.whl', 215965170,
          'cefa7fdb9710efd0f39c5f1be1d61ff6fc9a996c451265bd7fbdcf9455ed4b50'),
        pypi('nvidia-nvjitlink', 'nvidia_nvjitlink-13.4.92-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl', 42452378,
          'e0391f24ed94ec879b84e3da4d4ec320c879aff681f2c7a638462f7199284323'),
        pypi('nvidia-nvshmem-cu13', 'nvidia_nvshmem_cu13-3.4.5-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl', 60412546,
          '290f0a2ee94c9f3687a02502f3b9299a9f9fe826e6d0287ee18482e78d495b80'),
        pypi('nvidia-nvtx', 'nvidia_nvtx-13.0.85-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl', 148047,
          '4936d1d6780fbe68db454f5e72a42ff64d1fd6397df9f363ae786930fd5c1cd4'),
      ],
      system: 'libcudart.so.13 (the CUDA 13 runtime: the CUDA toolkit, or the nvidia-cuda-runtime wheel)',
    },
  ],
};

/** The pins for this platform. */
export function platformPins(key = `${process.platform}-${process.arch}`): LibtorchPin[] {
  return [...(PINS[key] ?? [])];
}

/** Every pinned file by name, for checking a wheel given to --from. */
export function pinnedFile(file: string, pins: readonly LibtorchPin[] = platformPins()): WheelPin | undefined {
  for (const p of pins) for (const w of [p.torch, ...p.deps]) if (w.file === file) return w;
  return undefined;
}

/** 'cu130' -> 13.0; undefined for 'cpu'. */
export function cudaOf(flavor: string): number | undefined {
  const m = flavor.match(/^cu(\d+)(\d)$/);
  return m ? Number(`${m[1]}.${m[2]}`) : undefined;
}

/** The CUDA version the driver supports, from `nvidia-smi`'s header ("CUDA Version: 13.0"). */
export function parseDriverCuda(nvidiaSmiOutput: string): number | undefined {
  const m = nvidiaSmiOutput.match(/CUDA Version:\s*(\d+)\.(\d+)/);
  return m ? Number(`${m[1]}.${m[2]}`) : undefined;
}

function setupError(message: string): VideoMAEError {
  return new VideoMAEError('VMAE_SETUP_FAILED', message);
}

/**
 * Picks the build for `--cuda`: 'cpu'; a version such as '13.0' (the newest pinned CUDA build not
 * newer than it); or 'auto' with `driverCuda` from nvidia-smi (the same rule, or cpu without a
 * driver). Returns the pin and a note explaining the choice. Throws VMAE_SETUP_FAILED.
 */
export function choosePin(request: string, pins: readonly LibtorchPin[], driverCuda: number | undefined): { pin: LibtorchPin; note: string } {
  const cpu = (): LibtorchPin => {
    const pin = pins.find((p) => p.flavor === 'cpu');
    if (!pin) throw setupError(`No pinned CPU libtorch on ${process.platform}-${process.arch}. Install one with --from <wheel|folder>.`);
    return pin;
  };
  const newestUpTo = (cuda: number): LibtorchPin | undefined =>
    pins
      .filter((p) => (cudaOf(p.flavor) ?? Infinity) <= cuda + 1e-9)
      .sort((a, b) => (cudaOf(b.flavor) ?? 0) - (cudaOf(a.flavor) ?? 0))[0];
  const pinned = pins.map((p) => p.flavor).join(', ') || 'none';

  if (request === 'cpu') return { pin: cpu(), note: 'CPU build (--cuda cpu)' };
  if (request === 'auto') {
    if (driverCuda === undefined) return { pin: cpu(), note: 'CPU build: no NVIDIA driver found (nvidia-smi)' };
    const pin = newestUpTo(driverCuda);
    if (!pin) return { pin: cpu(), note: `CPU build: the driver's CUDA ${driverCuda} is older than every pinned CUDA build (${pinned})` };
    return { pin, note: `${pin.flavor}: the newest pinned build the driver's CUDA ${driverCuda} runs` };
  }
  if (!/^\d+\.\d+$/.test(request)) {
    throw setupError(`Expected 'auto', 'cpu' or a CUDA version such as 13.0 for --cuda but received '${request}'`);
  }
  const pin = newestUpTo(Number(request));
  if (!pin) throw setupError(`No pinned libtorch runs on CUDA ${request} (pinned: ${pinned})`);
  return { pin, note: cudaOf(pin.flavor) === Number(request) ? `${pin.flavor} (--cuda ${request})` : `${pin.flavor}: the newest pinned build for CUDA ${request}` };
}
