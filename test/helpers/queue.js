'use strict';
// Fixtures for the queue suites: a real Redis (Debian's redis-server) on a free loopback port,
// and `videomae worker` processes, both started and stopped by the tests.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { ROOT } = require('./fixtures');

const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const CLI = path.join(ROOT, 'lib', 'cli.js');

/** A free TCP port on 127.0.0.1 (free now; taken by the caller right after). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Lines of a stream, as they come, to `onLine`. */
function lines(stream, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** A child process with its output lines kept, and a way to wait for one of them. */
function watch(child, label) {
  const out = [];
  const waiters = [];
  const onLine = (line) => {
    out.push(line);
    if (process.env.VMAE_TEST_VERBOSE) process.stderr.write(`[${label}] ${line}\n`);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  lines(child.stdout, onLine);
  lines(child.stderr, onLine);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then((r) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`${label} exited (${JSON.stringify(r)}) before printing ${w.re}:\n${out.join('\n')}`));
  });
  return {
    child,
    output: () => out.join('\n'),
    exited,
    /** Resolves with the first line (already printed or to come) matching `re`. */
    waitForLine(re) {
      const seen = out.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) {
        return Promise.reject(new Error(`${label} has exited without printing ${re}:\n${out.join('\n')}`));
      }
      return new Promise((resolve, reject) => waiters.push({ re, resolve, reject }));
    },
  };
}

/**
 * Starts redis-server on 127.0.0.1:port (a free one by default). With `persistent`, an
 * append-only file in a temp folder keeps the data across restart() (as production Redis for a
 * queue should be configured); otherwise nothing is written to disk.
 */
async function startRedis({ persistent = false, port } = {}) {
  port ??= await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-redis-'));
  let proc;
  const launch = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', persistent ? 'yes' : 'no', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
      '--loglevel', 'notice'];
    proc = watch(spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] }), `redis:${port}`);
    await proc.waitForLine(/Ready to accept connections/);
  };
  const stop = async () => {
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill('SIGTERM');
    await proc.exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    /** Stops Redis (SIGTERM: a clean shutdown) and starts it again on the same port. */
    async restart() {
      await stop();
      await launch();
    },
    async stop() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `videomae worker` with `args`; resolves once it reports ready. */
async function startWorker(args, { env = {} } = {}) {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  const name = args[args.indexOf('--name') + 1] ?? 'worker';
  const w = watch(child, name);
  await w.waitForLine(/ ready in \d+ ms/);
  return w;
}

/** Stops a child that may still run (test cleanup). */
async function kill(w) {
  if (w && w.child.exitCode === null && w.child.signalCode === null) {
    w.child.kill('SIGKILL');
    await w.exited;
  }
}

module.exports = { freePort, startRedis, startWorker, kill, watch, CLI };
