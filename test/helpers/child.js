'use strict';
// Runs JavaScript in a fresh Node process, for scenarios that may crash, exit mid-work or need a
// clean heap (classic-level's env-cleanup tests do the same). The child inherits the environment,
// so VIDEOMAE_NATIVE_PATH and LD_PRELOAD (the sanitizer run) reach it too.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');

/**
 * Runs `source` as a CommonJS script in `node [execArgv]`, with cwd ROOT. The script sees `ROOT`,
 * `vmae` (the package) and `fixtures` (test/helpers/fixtures.js), and `report(value)`, which prints
 * one JSON line that `result` returns. Resolves (never rejects) with
 * { code, signal, stdout, stderr, ms, timedOut, result }.
 */
function runChild(source, { execArgv = [], env = {}, timeoutMs = 60_000 } = {}) {
  const preamble = [
    '"use strict";',
    `const ROOT = ${JSON.stringify(ROOT)};`,
    'const vmae = require(ROOT);',
    `const fixtures = require(${JSON.stringify(path.join(__dirname, 'fixtures.js'))});`,
    "const report = (value) => process.stdout.write('@@RESULT ' + JSON.stringify(value) + '\\n');",
  ].join('\n');
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...execArgv, '-e', `${preamble}\n${source}`], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').reverse().find((l) => l.startsWith('@@RESULT '));
      const result = line ? JSON.parse(line.slice('@@RESULT '.length)) : undefined;
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut, result });
    });
  });
}

/** A one-line description of a finished child, for assertion messages. */
function describeChild(r) {
  const tail = (s) => s.trim().split('\n').slice(-15).join('\n');
  return `exit code ${r.code}, signal ${r.signal}, ${r.ms.toFixed(0)} ms${r.timedOut ? ' (timed out)' : ''}\n` +
    `--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`;
}

/** Threads of this process (Linux). */
function threadCount() {
  return fs.readdirSync('/proc/self/task').length;
}

/** Open file descriptors of this process (Linux). */
function fdCount() {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Resident set size in bytes, from /proc (current, unlike process.memoryUsage's cached value). */
function rss() {
  const pages = Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
  return pages * 4096;
}

/** Live child processes of `pid` (Linux), as [{ pid, comm }]. Zombies count: they were not reaped. */
function childProcesses(pid = process.pid) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const [, ppid] = stat.slice(close + 2).split(' ');
      if (Number(ppid) === pid) out.push({ pid: Number(entry), comm });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

module.exports = { ROOT, runChild, describeChild, threadCount, fdCount, rss, childProcesses };
