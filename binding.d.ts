// The raw native surface of build/Release/videomae.node (native/addon). No logic lives here:
// lib/ validates every argument before it reaches these functions, and shapes the results.
// Every promise rejects with an Error carrying a `code` (see lib/errors.ts).

export type NativeModelDtype = 'float32' | 'float16' | 'bfloat16';
export type NativeTensorDtype = NativeModelDtype | 'float64' | 'uint8';

export interface NativeThreadOptions {
  /** Intra-op threads of this classifier's inference thread; 0 keeps libtorch's default. */
  threads?: number;
  /** >1 merges queued single-clip forwards into one batch of up to this many clips. */
  maxBatchSize?: number;
  /** How long the thread waits for more clips to fill a batch. */
  maxBatchDelayMs?: number;
  /** forward() rejects pixel values holding NaN or ±Infinity (scanned on the inference thread). Default false. */
  rejectNonFinite?: boolean;
}

export interface NativeLoadOptions {
  device: string;
  dtype: NativeModelDtype;
  /** The load-time graph rewrites (fused attention and linear kernels). Default true. */
  optimize?: boolean;
}

export interface NativeModelInfo {
  /** extra/videomae.json, verbatim (docs/MODEL-FORMAT.md). */
  metadata: string;
  /** extra/config.json, verbatim. */
  config: string;
  fileVersion: number;
  parameterBytes: number;
  device: string;
  dtype: NativeModelDtype;
  /** Attention calls rewritten to vmae::attention (0: none, or optimize was false). */
  fusedAttention: number;
  /** Linear calls rewritten to vmae::linear (0: none, or optimize was false). */
  fusedLinear: number;
}

export interface NativePreprocessParams {
  shortestEdge: number;
  cropSize: number;
  rescaleFactor: number;
  mean: number[];
  std: number[];
}

export type NativeBuffer = ArrayBufferView | ArrayBuffer;

/** Both outputs of one forward, rows in input order (clip-major for forwardFrames). */
export interface NativeOutputs {
  /** logits [B*L]; L is 0 for an encoder-only model. */
  logits: Float32Array;
  /** embedding [B*D]; null for a file exported before embeddings (videomae-node/1, logits only). */
  embedding: Float32Array | null;
}

/** The output widths a warm-up forward saw. */
export interface NativeWarmup {
  labels: number;
  /** null: the model returns logits only. */
  embeddingSize: number | null;
}

/** One model on its own inference thread. `id` names a request for cancel(). */
export declare class NativeClassifier {
  constructor(options?: NativeThreadOptions);
  /** Async. Reads, loads and casts the model. */
  load(id: number, path: string, options: NativeLoadOptions): Promise<NativeModelInfo>;
  /** Async. A forward on zeros of `shape`; resolves with the model's output widths. */
  warmup(id: number, shape: number[]): Promise<NativeWarmup>;
  /** Async. Copies `data` (pixel_values [B,T,C,H,W]) at call time; resolves with both outputs of one forward. */
  forward(id: number, data: NativeBuffer, dtype: NativeTensorDtype, shape: number[]): Promise<NativeOutputs>;
  /** Async. uint8 frames [K*T,H,W,3] -> preprocess with `crops` crops -> one forward, rows clip-major. */
  forwardFrames(id: number, frames: NativeBuffer, shape: number[], params: NativePreprocessParams,
    numFrames: number, crops: number): Promise<NativeOutputs>;
  /** Async. uint8 frames [N,H,W,3] -> float32 pixel values [crops*N*3*S*S]. */
  preprocess(id: number, frames: NativeBuffer, shape: number[], params: NativePreprocessParams,
    crops: number): Promise<Float32Array>;
  /** Sync. Rejects a queued (not yet running) request with `code`; false when none was queued. */
  cancel(id: number, code: string, message: string): boolean;
  /** Async. Rejects queued requests with VMAE_DISPOSED, lets the running one finish, frees the model. */
  dispose(): Promise<void>;
}

export interface NativeRuntimeInfo {
  libtorchVersion: string;
  libtorchSource: string;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  defaultThreads: number;
  /** The CPU kernel variant in use: 'avx512', 'avx2' or 'generic'. */
  cpuKernels: string;
  /**
   * Whether libtorch runs bfloat16 natively on this CPU (AVX-512 or AMX; oneDNN's own check on
   * libtorch >= 2.1). Where it does not, loading `dtype: 'bfloat16'` on the CPU is refused.
   */
  cpuBfloat16: boolean;
}

/** Sync. What the addon was built against and what it sees now. */
export declare function runtimeInfo(): NativeRuntimeInfo;

/**
 * Sync. Stops the inference thread of every classifier in this environment (a running forward
 * finishes first; pending promises never settle). The addon registers it on process 'exit' itself, because
 * process.exit() and uncaught exceptions skip env cleanup hooks.
 */
export declare function stopAll(): void;

/** The parent's ends of a spawned process's pipes (close-on-exec); -1 where none was asked for. */
export interface NativeSpawned {
  pid: number;
  stdin: number;
  stdout: number;
  stderr: number;
  fd3: number;
}

/**
 * Sync. Starts `file` (searched on PATH) with posix_spawn instead of fork (native/addon/spawn.h):
 * fd 0 a pipe when `stdin`, else /dev/null; fds 1 and 2 pipes; fd 3 a pipe when `fd3`. `onExit`
 * runs once, after the process has exited and been reaped (`signal` is a signal number). Throws an
 * Error with `errno` when it cannot be started.
 */
export declare function spawnProcess(file: string, args: string[], stdio: { stdin: boolean; fd3: boolean },
  onExit: (code: number | null, signal: number | null) => void): NativeSpawned;

export interface NativeBinding {
  NativeClassifier: typeof NativeClassifier;
  runtimeInfo: typeof runtimeInfo;
  stopAll: typeof stopAll;
  spawnProcess: typeof spawnProcess;
}
