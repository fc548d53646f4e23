// Finding a Python that has PyTorch, for the exporter (videomae export) and videomae doctor.
import { execFile } from 'node:child_process';

/** One Python that was tried. */
export interface PythonCheck {
  /** The command, e.g. 'python3' or '/usr/bin/python3'. */
  command: string;
  /** Where it came from: 'VIDEOMAE_PYTHON', 'PATH' or 'system'. */
  source: string;
  /** torch.__version__ when `import torch` works. */
  torchVersion?: string;
  /** Why it cannot be used. */
  error?: string;
}

export interface PythonSearch {
  /** The first candidate with torch, if any. */
  found?: PythonCheck;
  /** Every candidate checked, in order (the search stops at the first one with torch). */
  tried: PythonCheck[];
}

/** How to get a usable Python; for messages. */
export const PYTHON_HELP =
  'Install PyTorch for Python 3 (pip install torch, or on Debian/Ubuntu apt-get install python3-torch), ' +
  'or set VIDEOMAE_PYTHON to a Python that has it';

/** The candidates, in order: VIDEOMAE_PYTHON, python3 on PATH, then /usr/bin/python3. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): Array<{ command: string; source: string }> {
  const list = [
    ...(env.VIDEOMAE_PYTHON ? [{ command: env.VIDEOMAE_PYTHON, source: 'VIDEOMAE_PYTHON' }] : []),
    { command: process.platform === 'win32' ? 'python' : 'python3', source: 'PATH' },
    ...(process.platform === 'win32' ? [] : [{ command: '/usr/bin/python3', source: 'system' }]),
  ];
  return list.filter((c, i) => list.findIndex((d) => d.command === c.command) === i);
}

/** Async. Whether `command` runs and can `import torch` (within timeoutMs; a cold import is slow). */
export function checkPython(command: string, source: string, timeoutMs = 120_000): Promise<PythonCheck> {
  const script = 'import sys, torch; sys.stdout.write(torch.__version__)';
  return new Promise((resolve) => {
    execFile(command, ['-c', script], { timeout: timeoutMs, killSignal: 'SIGKILL', windowsHide: true },
      (err, stdout, stderr) => {
        if (!err) return resolve({ command, source, torchVersion: String(stdout).trim() });
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const lastLine = String(stderr).trim().split('\n').pop() ?? '';
        const error = e.code === 'ENOENT' ? 'not found'
          : e.killed ? `timed out after ${timeoutMs} ms`
          : /No module named ['"]?torch/.test(String(stderr)) ? 'no torch module'
          : lastLine || e.message;
        resolve({ command, source, error });
      });
  });
}

/** Async. The first candidate Python with torch (see pythonCandidates), and what was tried. */
export async function findTorchPython(env: NodeJS.ProcessEnv = process.env,
  candidates = pythonCandidates(env)): Promise<PythonSearch> {
  const tried: PythonCheck[] = [];
  for (const c of candidates) {
    const check = await checkPython(c.command, c.source);
    tried.push(check);
    if (check.torchVersion !== undefined) return { found: check, tried };
  }
  return { tried };
}
