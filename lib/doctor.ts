// `videomae doctor`: what this installation can do, and the command that fixes each problem.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { NativeRuntimeInfo } from '../binding';
import { VideoClassifier } from './classifier';
import { defaultModelPath } from './default-model';
import { binaries } from './video/ffmpeg';
import { libtorchTag, native, nativeAttempts, nativeInfo } from './native';
import { findTorchPython, PYTHON_HELP } from './python';
import { findLibtorch, majorMinor } from './setup/libtorch';
import { packageRoot } from './setup/paths';
import { listFlavors } from './setup/prebuilds';

export type CheckStatus = 'ok' | 'info' | 'warn' | 'fail';

/** One line of the report. `fail` means classification cannot work. */
export interface Check {
  status: CheckStatus;
  summary: string;
  /** The command (or action) that fixes it. */
  fix?: string;
  /** Machine-readable details (in --json). */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  /** False when classification cannot work. */
  ok: boolean;
  checks: {
    node: Check;
    addon: Check;
    libtorch: Check;
    gpu: Check;
    cpu: Check;
    ffmpeg: Check;
    python: Check;
    model: Check;
  };
}

export interface DoctorOptions {
  /** The model to check instead of the demo model. */
  model?: string;
  env?: NodeJS.ProcessEnv;
}

const SETUP_FIX =
  'npx videomae setup (add --cuda auto on NVIDIA machines), or on Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread';

function run(command: string, args: string[], env: NodeJS.ProcessEnv): { ok: boolean; out: string; error?: string } {
  const r = spawnSync(command, args, { env, encoding: 'utf8', timeout: 15_000, windowsHide: true });
  if (r.error) return { ok: false, out: '', error: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message };
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`, error: r.status === 0 ? undefined : `exit code ${r.status}` };
}

function checkNode(): Check {
  const napi = Number(process.versions.napi);
  const data = { version: process.version, napi };
  if (napi < 8) return { status: 'fail', summary: `Node.js ${process.version}, N-API ${napi} (8 or newer needed)`, fix: 'Install Node.js 18.17 or newer', data };
  return { status: 'ok', summary: `Node.js ${process.version}, N-API ${napi}`, data };
}

function checkAddon(): { check: Check; runtime?: NativeRuntimeInfo } {
  try {
    const runtime = native().runtimeInfo();
    const info = nativeInfo()!;
    const what = { env: 'VIDEOMAE_NATIVE_PATH', source: 'source build', prebuild: 'prebuild' }[info.kind];
    const data = { kind: info.kind, flavor: info.flavor, path: info.path, verified: info.verified, tried: nativeAttempts() };
    return {
      check: { status: 'ok', summary: `${what}${info.flavor ? ` ${info.flavor}` : ''}: ${info.path}`, data },
      runtime,
    };
  } catch (err) {
    return {
      check: {
        status: 'fail',
        summary: 'cannot be loaded',
        fix: SETUP_FIX + '; or build from source: LIBTORCH=/path/to/libtorch npm run build (in a git checkout)',
        data: { error: (err as Error).message, tried: nativeAttempts() },
      },
    };
  }
}

function checkLibtorch(runtime: NativeRuntimeInfo | undefined, env: NodeJS.ProcessEnv): Check {
  const info = nativeInfo();
  const loaded = info?.libtorch;
  const found = findLibtorch(packageRoot(), env).map(({ source, info: i }) => ({ source, ...i }));
  const prebuilds = listFlavors(packageRoot()).map((f) => f.tag);
  const data = {
    loaded, mapped: info?.mapped, flavor: info?.flavor, compiledAgainst: runtime?.libtorchVersion, buildSource: runtime?.libtorchSource,
    found, prebuilds,
  };
  if (runtime) {
    const where = loaded ? ` in ${loaded.libDir}` : '';
    if ((info?.mapped.length ?? 0) > 1) {
      return { status: 'fail', summary: `libtorch is mapped from ${info!.mapped.length} folders (${info!.mapped.join(', ')}): a mix`, fix: 'Check LD_PRELOAD and LD_LIBRARY_PATH', data };
    }
    const summary = `${loaded?.version ?? runtime.libtorchVersion} (${loaded?.flavor ?? (runtime.cudaCompiled ? 'cuda' : 'cpu')})${where}; ` +
      `the addon was built against ${runtime.libtorchVersion}`;
    if (loaded?.version && majorMinor(loaded.version) !== majorMinor(runtime.libtorchVersion)) {
      return { status: 'warn', summary, fix: 'Rebuild against the libtorch that is loaded: npm run build', data };
    }
    return { status: 'ok', summary, data };
  }
  if (!found.length) {
    return { status: 'fail', summary: 'none found (LD_LIBRARY_PATH, the package\'s ./libtorch, system library folders)', fix: SETUP_FIX, data };
  }
  const list = found.map((f) => `${libtorchTag(f)} in ${f.libDir}`).join('; ');
  const ldPath = found[0].source === 'LD_LIBRARY_PATH' ? `Check LD_LIBRARY_PATH, which puts ${found[0].libDir} first; ` : '';
  return {
    status: 'fail',
    summary: `found ${list}, but no binary for it loads (prebuilds here: ${prebuilds.join(', ') || 'none'})`,
    fix: `${ldPath}${SETUP_FIX}; or build from source against it: npm run build`,
    data,
  };
}

function checkGpu(runtime: NativeRuntimeInfo | undefined, env: NodeJS.ProcessEnv): Check {
  const smi = run('nvidia-smi', ['-L'], env);
  const gpus = smi.ok ? smi.out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('GPU ')) : [];
  const cudaAvailable = runtime?.cudaAvailable ?? false;
  const data = { gpus, cudaAvailable, cudaCompiled: runtime?.cudaCompiled, cudaDeviceCount: runtime?.cudaDeviceCount ?? 0, nvidiaSmi: smi.error };
  if (!gpus.length) {
    const flavor = nativeInfo()?.flavor;
    if (runtime?.cudaCompiled) {
      // A CUDA build without a GPU: it works on the CPU, and device: 'cuda' is refused; say why.
      return {
        status: 'info',
        summary: `the addon (${flavor ?? 'CUDA build'}) can use CUDA, but no NVIDIA GPU is visible ` +
          `(nvidia-smi: ${smi.error ?? 'none listed'}; CUDA devices: ${runtime.cudaDeviceCount}), so device: 'cuda' rejects with ` +
          "VMAE_DEVICE_UNAVAILABLE and classification runs on the CPU",
        fix: 'On a machine with an NVIDIA GPU, install its driver (nvidia-smi must list the GPU)',
        data,
      };
    }
    return { status: 'info', summary: `no NVIDIA GPU visible (nvidia-smi: ${smi.error ?? 'none listed'}); classification runs on the CPU`, data };
  }
  const list = gpus.join('; ');
  if (cudaAvailable) return { status: 'ok', summary: `${list}; CUDA usable (${runtime!.cudaDeviceCount} device(s))`, data };
  const flavor = nativeInfo()?.flavor;
  return {
    status: 'warn',
    summary: `${list}; CUDA is not usable from the loaded libtorch (${flavor ?? 'unknown flavor'})`,
    fix: 'npx videomae setup --cuda auto (a CUDA libtorch; then a matching prebuild or npm run build)',
    data,
  };
}

/** The CPU's model and the flags that decide how fast `dtype: 'bfloat16'` / `'float16'` run (Linux /proc/cpuinfo). */
export function cpuFeatures(cpuinfo?: string): { model: string; amx: boolean; avx512bf16: boolean; avx512fp16: boolean } {
  let text = cpuinfo ?? '';
  if (cpuinfo === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // not Linux: no flags to read
    }
  }
  const flags = new Set(((text.match(/^flags\s*:\s*(.*)$/m) ?? [])[1] ?? '').split(/\s+/));
  const model = ((text.match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown CPU').trim();
  return { model, amx: flags.has('amx_bf16') && flags.has('amx_tile'), avx512bf16: flags.has('avx512_bf16'), avx512fp16: flags.has('avx512_fp16') };
}

function checkCpu(runtime: NativeRuntimeInfo | undefined): Check {
  const f = cpuFeatures();
  const torch2 = runtime ? Number(runtime.libtorchVersion.split('.')[0]) >= 2 && majorMinor(runtime.libtorchVersion) !== '2.0' : false;
  const has = [f.amx && 'AMX', f.avx512bf16 && 'AVX512-BF16', f.avx512fp16 && 'AVX512-FP16'].filter(Boolean).join(', ');
  const data = { ...f, libtorch2: torch2, bfloat16Allowed: runtime?.cpuBfloat16 };
  if (runtime && !runtime.cpuBfloat16) {
    return { status: 'info', summary: `${f.model}: no AVX-512 or AMX, so libtorch ${runtime.libtorchVersion} would emulate bfloat16 (several times slower than float32) and dtype 'bfloat16' is refused on this CPU; use float32`, data };
  }
  if (!f.amx && !f.avx512bf16) return { status: 'info', summary: `${f.model}: no AMX or AVX512-BF16; use dtype float32 on this CPU`, data };
  if (!torch2) {
    return { status: 'info', summary: `${f.model} has ${has}; bfloat16 is only fast with libtorch 2.1 or newer`, fix: 'npx videomae setup (libtorch 2.x), then --dtype bfloat16', data };
  }
  return { status: 'ok', summary: `${f.model} has ${has}: --dtype bfloat16 (LoadOptions.dtype 'bfloat16') is recommended${f.amx ? '' : '; without AMX the gain over float32 varies (1.1–1.7× on a Zen 4 EPYC, docs/PERFORMANCE.md)'}`, data };
}

function checkFfmpeg(env: NodeJS.ProcessEnv): Check {
  const { ffmpeg, ffprobe } = binaries(env);
  const version = (b: { path: string }): string | undefined => {
    const r = run(b.path, ['-version'], env);
    return r.ok ? r.out.match(/version\s+(\S+)/)?.[1] ?? 'unknown version' : undefined;
  };
  const [v, pv] = [version(ffmpeg), version(ffprobe)];
  const data = { ffmpeg: { ...ffmpeg, version: v }, ffprobe: { ...ffprobe, version: pv } };
  if (v && pv) return { status: 'ok', summary: `ffmpeg ${v} (${ffmpeg.path}), ffprobe ${pv}`, data };
  const missing = [v ? '' : `ffmpeg (${ffmpeg.path}, from ${ffmpeg.from})`, pv ? '' : `ffprobe (${ffprobe.path}, from ${ffprobe.from})`].filter(Boolean);
  return {
    status: 'warn',
    summary: `${missing.join(' and ')} not found: video files cannot be decoded (tensors and frames still work)`,
    fix: 'apt-get install ffmpeg (or brew install ffmpeg), or set FFMPEG_PATH / FFPROBE_PATH',
    data,
  };
}

async function checkPython(env: NodeJS.ProcessEnv): Promise<Check> {
  const search = await findTorchPython(env);
  const data = { found: search.found, tried: search.tried };
  if (search.found) {
    return { status: 'ok', summary: `${search.found.command} has torch ${search.found.torchVersion} (for videomae export)`, data };
  }
  const tried = search.tried.map((t) => `${t.command}: ${t.error}`).join('; ');
  return { status: 'warn', summary: `no Python with torch (${tried}); only needed to export models`, fix: PYTHON_HELP, data };
}

async function checkModel(file: string, given: boolean, loaded: boolean): Promise<Check> {
  const data: Record<string, unknown> = { path: file, given, exists: fs.existsSync(file) };
  const name = given ? file : `default model ${path.relative(packageRoot(), file)}`;
  if (!data.exists) {
    return {
      status: 'fail',
      summary: `${name}: missing`,
      fix: given
        ? 'Check the path given to --model'
        : 'Pass --model <file.pt>, or make one: npx videomae export --checkpoint <folder> --output model.pt',
      data,
    };
  }
  if (!loaded) return { status: 'info', summary: `${name}: exists; not loaded (the addon is unavailable)`, data };
  let classifier: VideoClassifier | undefined;
  try {
    classifier = await VideoClassifier.load(file);
    data.loads = true;
    data.name = classifier.model.name;
    data.numLabels = classifier.config.numLabels;
    return { status: 'ok', summary: `${name}: loads ("${classifier.model.name}", ${classifier.config.numLabels} labels)`, data };
  } catch (err) {
    data.loads = false;
    data.error = (err as Error).message;
    return { status: 'fail', summary: `${name}: does not load: ${(err as Error).message}`, fix: 'Export it again with npx videomae export', data };
  } finally {
    await classifier?.dispose();
  }
}

/** Runs every check. Async; never throws for a failed check (see `ok`). */
export async function diagnose(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const node = checkNode();
  const { check: addon, runtime } = checkAddon();
  const libtorch = checkLibtorch(runtime, env);
  const gpu = checkGpu(runtime, env);
  const cpu = checkCpu(runtime);
  const ffmpeg = checkFfmpeg(env);
  const python = await checkPython(env);
  const model = await checkModel(options.model ? path.resolve(options.model) : defaultModelPath(), !!options.model, !!runtime);
  const checks = { node, addon, libtorch, gpu, cpu, ffmpeg, python, model };
  return { ok: Object.values(checks).every((c) => c.status !== 'fail'), checks };
}

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', info: '--  ', warn: 'WARN', fail: 'FAIL' };
const TITLE: Record<keyof DoctorReport['checks'], string> = {
  node: 'Node.js', addon: 'Addon', libtorch: 'libtorch', gpu: 'GPU', cpu: 'CPU', ffmpeg: 'ffmpeg', python: 'Python', model: 'Model',
};

/** The report as text, one check per line, each problem followed by its fix. */
export function formatReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const [key, check] of Object.entries(report.checks) as [keyof DoctorReport['checks'], Check][]) {
    lines.push(`${MARK[check.status]} ${TITLE[key]}: ${check.summary}`);
    if (key === 'addon' && check.status === 'fail' && typeof check.data?.error === 'string') {
      // The fixes follow as `fix:`; show what was tried.
      const tried = check.data.error.split('\nPossible solutions:')[0];
      lines.push(...tried.split('\n').map((l) => `       ${l}`));
    }
    if (check.fix && check.status !== 'ok') lines.push(`       fix: ${check.fix}`);
  }
  lines.push(report.ok ? 'Classification can work.' : 'Classification cannot work until the FAIL lines are fixed.');
  return `${lines.join('\n')}\n`;
}
