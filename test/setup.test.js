'use strict';
// `videomae setup` against real files: the official torch 2.13 CPU wheel, served from an HTTP server
// on 127.0.0.1 as the mirror (VIDEOMAE_LIBTORCH_MIRROR), and from disk with --from. Every failure
// (a changed byte, a short read, a redirect loop, a server that hangs, a full disk, an archive entry
// outside the target) must leave the previous setup as it was. No traffic leaves 127.0.0.1.
// The wheels: VIDEOMAE_TEST_WHEELS (folders), else /opt/wheels and /opt/pypi-more/files.
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { after, before, beforeEach, describe, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const { setup, wheelUrl } = require('../lib/setup');
const { describeLibtorch } = require('../lib/setup/libtorch');
const { choosePin, parseDriverCuda, platformPins, pinnedFile } = require('../lib/setup/pins');
const { pinOf, wheelDir } = require('./helpers/libtorch');

const PYTHON = process.env.VIDEOMAE_PYTHON || '/usr/bin/python3';
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'npm_config_proxy', 'npm_config_https_proxy',
  'npm_config_http_proxy', 'npm_config_no_proxy'];

const CPU = pinOf('cpu');
const WHEEL = CPU && wheelDir(CPU.torch.file) && path.join(wheelDir(CPU.torch.file), CPU.torch.file);
const skipWheel = WHEEL ? false : `the torch ${CPU?.version} CPU wheel is not here (set VIDEOMAE_TEST_WHEELS)`;
const MIRROR_PATH = CPU && `/mirror/${encodeURIComponent(CPU.torch.file)}`;

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// Writes a .zip or .tar.gz of `src` (links kept as links) plus raw `extra` entries, which may be
// unsafe: { name, data } or { name, link }.
const ARCHIVE_PY = `
import io, json, os, stat, sys, tarfile, zipfile
kind, src, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
entries = []
for base, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(dirs) + sorted(files):
        full = os.path.join(base, name)
        rel = os.path.relpath(full, src)
        if os.path.islink(full): entries.append({'name': rel, 'link': os.readlink(full)})
        elif os.path.isdir(full): entries.append({'name': rel + '/', 'dir': True})
        else: entries.append({'name': rel, 'data': open(full, 'rb').read()})
for e in extra:
    if 'data' in e: e['data'] = e['data'].encode()
    entries.append(e)
if kind == 'zip':
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
        for e in entries:
            if 'link' in e:
                info = zipfile.ZipInfo(e['name']); info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, e['link'])
            elif e.get('dir'): z.writestr(zipfile.ZipInfo(e['name']), b'')
            else: z.writestr(e['name'], e['data'])
else:
    with tarfile.open(out, 'w:gz') as t:
        for e in entries:
            info = tarfile.TarInfo(e['name'].rstrip('/'))
            if 'link' in e: info.type, info.linkname = tarfile.SYMTYPE, e['link']; t.addfile(info)
            elif e.get('dir'): info.type, info.mode = tarfile.DIRTYPE, 0o755; t.addfile(info)
            else: info.size = len(e['data']); t.addfile(info, io.BytesIO(e['data']))
`;

let work; // every file this suite writes lives under here
let tree; // a folder holding libtorch/ in the official layout (a small stand-in for the --from archive tests)
let zipFile;
let zipBytes;
let server;
let base; // http://127.0.0.1:<port>
let routes; // url -> handler(req, res)
let requests; // urls the server saw
let savedEnv;
let damaged; // the wheel with one byte changed
let installed; // { cache, link } of a good install made by the first mirror test, for the failure tests

function officialTree(dir, version) {
  const lt = path.join(dir, 'libtorch');
  const copy = (from, to, fallback) => {
    fs.mkdirSync(path.dirname(to), { recursive: true });
    if (fs.existsSync(from)) fs.copyFileSync(from, to);
    else fs.writeFileSync(to, fallback);
  };
  copy('/usr/lib/x86_64-linux-gnu/libc10.so.1.13.0', path.join(lt, 'lib', 'libc10.so'), 'not a real library');
  copy('/usr/include/torch/script.h', path.join(lt, 'include', 'torch', 'script.h'), '#pragma once\n');
  fs.mkdirSync(path.join(lt, 'share', 'cmake', 'Torch'), { recursive: true });
  fs.writeFileSync(path.join(lt, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), '# a stub for tests\nset(TORCH_FOUND TRUE)\n');
  fs.writeFileSync(path.join(lt, 'build-version'), `${version}\n`);
  return dir;
}

function archive(kind, src, name, extra = []) {
  const out = path.join(work, name);
  execFileSync(PYTHON, ['-c', ARCHIVE_PY, kind, src, out, JSON.stringify(extra)]);
  return out;
}


/** Serves `file` with its Content-Length; `cut` bytes in, closes the connection (a short read) or stalls. */
function serveFile(file, { cut, stall } = {}) {
  return (req, res) => {
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (cut === undefined) return fs.createReadStream(file).pipe(res);
    const head = Buffer.alloc(cut);
    const fd = fs.openSync(file, 'r');
    try { fs.readSync(fd, head, 0, cut, 0); } finally { fs.closeSync(fd); }
    // Close only once the write has reached the kernel: destroying the socket when the file stream
    // ended dropped what was still queued in the socket, and the client saw fewer than `cut` bytes.
    res.write(head, () => {
      if (!stall) res.socket.destroy();
      // stall: keep the connection open and send nothing more
    });
  };
}

/** A fresh cache folder and link path for one test. */
function paths() {
  const dir = fs.mkdtempSync(path.join(work, 'case-'));
  return { cache: path.join(dir, 'cache'), link: path.join(dir, 'pkg', 'libtorch'), dir };
}

function run(p, options = {}) {
  return setup({
    cuda: 'cpu',
    link: p.link,
    log: () => {},
    progress: false,
    ...options,
    env: { VIDEOMAE_CACHE_DIR: p.cache, VIDEOMAE_LIBTORCH_MIRROR: `${base}/mirror`, PATH: '/nonexistent', ...options.env },
  });
}

/** Asserts that `promise` rejects with VMAE_SETUP_FAILED and a message matching `pattern`; returns the message. */
async function rejectsSetup(promise, pattern) {
  let message;
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, 'VMAE_SETUP_FAILED', err.stack);
    message = err.message;
    assert.match(err.message, pattern);
    return true;
  });
  return message;
}

/** Every file under `dir`, relative. */
function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = e.name;
    if (e.isDirectory()) out.push(...walk(path.join(dir, rel)).map((f) => path.join(rel, f)));
    else out.push(rel);
  }
  return out;
}

/** What a failed setup must not change: the installed files (name, size, mtime) and the link. */
function snapshot({ cache, link }) {
  const lt = path.join(cache, 'libtorch');
  const files = walk(lt).map((f) => {
    const st = fs.lstatSync(path.join(lt, f));
    return `${f} ${st.size} ${st.mtimeMs}`;
  });
  return { files, link: fs.readlinkSync(link) };
}

/** After a failure: no partial download, no staging folder. */
function assertNoLeftovers(cache) {
  for (const sub of ['downloads', 'tmp']) {
    const dir = path.join(cache, sub);
    assert.deepEqual(fs.existsSync(dir) ? fs.readdirSync(dir) : [], [], `${sub}/ is empty`);
  }
}

before(async () => {
  savedEnv = Object.fromEntries(PROXY_VARS.flatMap((k) => [k, k.toLowerCase()]).map((k) => [k, process.env[k]]));
  for (const k of Object.keys(savedEnv)) delete process.env[k];
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-setup-'));
  tree = officialTree(path.join(work, 'tree'), '2.4.1+cpu');
  zipFile = archive('zip', tree, 'libtorch.zip');
  zipBytes = fs.readFileSync(zipFile);
  if (WHEEL) {
    // The real wheel with one byte changed, in its middle: same name, same size.
    damaged = path.join(work, 'damaged', CPU.torch.file);
    fs.mkdirSync(path.dirname(damaged));
    fs.copyFileSync(WHEEL, damaged);
    const fd = fs.openSync(damaged, 'r+');
    const at = Math.floor(CPU.torch.size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
  }
  server = http.createServer((req, res) => {
    requests.push(req.url);
    const route = routes[req.url];
    if (route) route(req, res);
    else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

beforeEach(() => {
  routes = WHEEL ? { [MIRROR_PATH]: serveFile(WHEEL) } : {};
  requests = [];
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  for (const [k, v] of Object.entries(savedEnv)) if (v !== undefined) process.env[k] = v;
  fs.rmSync(work, { recursive: true, force: true });
});

describe('pins', () => {
  test('--cuda picks the newest pinned CUDA build the driver runs, else cpu', () => {
    const pins = platformPins('linux-x64');
    assert.equal(parseDriverCuda('| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0     |'), 13.0);
    assert.equal(parseDriverCuda('no driver'), undefined);
    assert.equal(choosePin('auto', pins, undefined).pin.flavor, 'cpu');
    assert.equal(choosePin('auto', pins, 13.0).pin.flavor, 'cu130');
    assert.equal(choosePin('auto', pins, 13.2).pin.flavor, 'cu130');
    assert.equal(choosePin('auto', pins, 12.4).pin.flavor, 'cpu');
    assert.equal(choosePin('13.0', pins, undefined).pin.flavor, 'cu130');
    assert.equal(choosePin('cpu', pins, 13.0).pin.flavor, 'cpu');
    assert.throws(() => choosePin('12.4', pins, undefined), /No pinned libtorch runs on CUDA 12\.4/);
    assert.throws(() => choosePin('cuda', pins, undefined), /Expected 'auto', 'cpu' or a CUDA version/);
  });

  test('every pin names a published file with its size and a sha256; the CPU wheel on disk matches its pin', { skip: skipWheel }, async () => {
    for (const pin of platformPins('linux-x64')) {
      for (const w of [pin.torch, ...pin.deps]) {
        assert.match(w.sha256, /^[0-9a-f]{64}$/);
        assert.ok(w.size > 0 && w.file.endsWith('.whl') && /^https:\/\//.test(w.index), w.file);
        assert.equal(pinnedFile(w.file), w);
      }
      assert.match(pin.tag, /^torch\d+\.\d+-(cpu|cu\d+)$/);
    }
    // An independent hash of the real file (sha256sum), not the code under test.
    const sum = execFileSync('sha256sum', [WHEEL], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(sum, CPU.torch.sha256);
    assert.equal(fs.statSync(WHEEL).size, CPU.torch.size);
  });
});

describe('downloads from a mirror (the real torch 2.13 CPU wheel on 127.0.0.1)', { skip: skipWheel }, () => {
  test('setup --cuda cpu downloads, verifies and unpacks only the libtorch; a second run reuses the cache', async () => {
    const p = paths();
    const lines = [];
    const r = await run(p, { log: (l) => lines.push(l) });
    assert.deepEqual(requests, [MIRROR_PATH]);
    assert.equal(r.source, 'download');
    assert.equal(r.sha256, CPU.torch.sha256);
    assert.deepEqual(r.files.map((f) => [f.file, f.from, f.pinned]), [[CPU.torch.file, 'download', true]]);
    assert.equal(r.dir, path.join(p.cache, 'libtorch', `2.13.0+cpu-${CPU.torch.sha256.slice(0, 12)}`, 'torch'));
    assert.equal(fs.readlinkSync(p.link), r.dir);
    // What the wheel's own RECORD lists under torch/lib, include, share/cmake (python's zipfile reads it).
    const listed = JSON.parse(execFileSync(PYTHON, ['-c', `
import json, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print(json.dumps(sorted(n[len('torch/'):] for n in names if not n.endswith('/') and (n.startswith(('torch/lib/', 'torch/include/', 'torch/share/cmake/')) or n == 'torch/version.py'))))`, WHEEL],
    { encoding: 'utf8', maxBuffer: 64 << 20 }));
    assert.deepEqual(walk(r.dir).sort(), listed, 'exactly the libtorch part of the wheel, nothing of the Python package');
    assert.deepEqual(fs.readdirSync(path.dirname(r.dir)).sort(), ['.videomae-setup.json', 'torch']);
    assert.deepEqual(describeLibtorch(path.join(r.dir, 'lib')),
      { libDir: path.join(r.dir, 'lib'), version: '2.13.0', flavor: 'cpu', versionFrom: 'torch/version.py' });
    assertNoLeftovers(p.cache);
    assert.ok(lines.some((l) => l.includes(`${base}${MIRROR_PATH}`)), 'the download is announced with its URL');

    requests = [];
    const again = await run(p);
    assert.equal(again.source, 'cache');
    assert.deepEqual(requests, [], 'no download the second time');
    installed = p;
  });

  test('one byte changed: refused with both hashes, and the previous setup is left as it was', async () => {
    assert.ok(installed, 'the previous test installed');
    const before = snapshot(installed);
    routes = { [MIRROR_PATH]: serveFile(damaged) };
    await rejectsSetup(run(installed, { force: true }), new RegExp(`Checksum mismatch for .*expected sha256 ${CPU.torch.sha256}, got [0-9a-f]{64}`));
    assert.deepEqual(snapshot(installed), before);
    assertNoLeftovers(installed.cache);
    // The same damaged file offline, into a cache without this build: its name is pinned, so it is
    // checked against the pin; the link made by the good install stays.
    const fresh = { ...paths(), link: installed.link };
    await rejectsSetup(run(fresh, { from: damaged }), /its name is pinned with sha256 .* but the file has/);
    assert.deepEqual(snapshot(installed), before);
    assert.ok(!fs.existsSync(path.join(fresh.cache, 'libtorch')));
  });

  test('a short read (the server closes early) is a clear error; the previous setup stays', async () => {
    const before = snapshot(installed);
    routes = { [MIRROR_PATH]: serveFile(WHEEL, { cut: 1 << 20 }) };
    // The server sends exactly 1 MiB. The count in the message is what reached the file before the
    // close destroyed the response, which may be less by what was still buffered in it.
    const message = await rejectsSetup(run(installed, { force: true }), new RegExp(`truncated: received \\d+ of ${CPU.torch.size} bytes`));
    const received = Number(/received (\d+) of/.exec(message)[1]);
    assert.ok(received > 0 && received <= 1 << 20, `received ${received}`);
    assert.deepEqual(snapshot(installed), before);
    assertNoLeftovers(installed.cache);
  });

  test('a redirect loop is a clear error', async () => {
    const before = snapshot(installed);
    routes = { [MIRROR_PATH]: (req, res) => res.writeHead(302, { location: MIRROR_PATH }).end() };
    await rejectsSetup(run(installed, { force: true }), /Too many redirects \(more than 5\).*redirects in a loop/);
    assert.equal(requests.length, 6);
    assert.deepEqual(snapshot(installed), before);
  });

  test('a server that stops sending is a clear error after the idle timeout', async () => {
    const before = snapshot(installed);
    routes = { [MIRROR_PATH]: serveFile(WHEEL, { cut: 1 << 16, stall: true }) };
    await rejectsSetup(run(installed, { force: true, idleTimeoutMs: 500 }), /stopped: no data for 0\.5 s after 65536 bytes.*VIDEOMAE_DOWNLOAD_TIMEOUT/);
    assert.deepEqual(snapshot(installed), before);
    assertNoLeftovers(installed.cache);
  });

  test('without a mirror, the wheel\'s URL comes from its PEP 503 index page, as pip reads it', async () => {
    // The real index page of one pinned wheel, as the package index serves it (relative href with #sha256=).
    const pin = pinOf('cu130').deps.find((w) => w.project === 'nvidia-nvtx');
    const page = path.join('/opt/pypi-more/simple', pin.project, 'index.html');
    const html = fs.existsSync(page) ? fs.readFileSync(page, 'utf8')
      : `<a href="../../files/${pin.file}#sha256=${pin.sha256}">${pin.file}</a>`;
    routes = { [`/simple/${pin.project}/`]: (req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html) };
    const url = await wheelUrl({ ...pin, index: `${base}/simple` }, {}, 5000);
    assert.equal(url, `${base}/files/${pin.file}`);
    routes = { [`/simple/${pin.project}/`]: (req, res) => res.writeHead(200).end('<a href="other.whl">other.whl</a>') };
    await rejectsSetup(wheelUrl({ ...pin, index: `${base}/simple` }, {}, 5000), /does not list nvidia_nvtx-13\.0\.85.*VIDEOMAE_LIBTORCH_MIRROR/);
    assert.equal(await wheelUrl(pin, { VIDEOMAE_LIBTORCH_MIRROR: 'http://mirror.example/wheels/' }, 5000),
      `http://mirror.example/wheels/${pin.file}`);
  });

  test('HTTP 404 names the URL', async () => {
    routes = {};
    await rejectsSetup(run(paths()), new RegExp(`HTTP 404 .*for ${base}/mirror/torch-2\\.13\\.0%2Bcpu`));
  });

  test('a full disk is refused before anything is written, saying how much is needed', async (t) => {
    const p = paths();
    fs.mkdirSync(p.cache, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', p.cache]);
    if (m.status !== 0) return t.skip(`cannot mount a small tmpfs here: ${m.stderr}`);
    try {
      await rejectsSetup(run(p), /Not enough disk space in .* to download torch-2\.13\.0\+cpu.*needs 0\.19 GB.*VIDEOMAE_CACHE_DIR/);
      // Room for the download but not for the unpacked libtorch.
      spawnSync('mount', ['-o', 'remount,size=300m', p.cache]);
      await rejectsSetup(run(p), /Not enough disk space in .* to unpack libtorch 2\.13\.0/);
      assert.ok(!fs.existsSync(path.join(p.cache, 'tmp')) || fs.readdirSync(path.join(p.cache, 'tmp')).length === 0, 'no staging folder');
      assert.ok(!fs.existsSync(path.join(p.cache, 'libtorch')));
      assert.ok(!fs.existsSync(p.link));
      // The verified download stays for the next run, which needs no second download.
      assert.deepEqual(fs.readdirSync(path.join(p.cache, 'downloads')), [CPU.torch.file]);
      requests = [];
      await rejectsSetup(run(p), /Not enough disk space in .* to unpack/);
      assert.deepEqual(requests, [], 'the kept download was reused');
      // Room for the unpacked bytes plus 1 MB, but not for what the files really take on disk (blocks,
      // ~10,000 headers): the check passes and the disk fills up while unpacking (ENOSPC).
      const unpacked = Number(execFileSync(PYTHON, ['-c', `
import sys, zipfile
print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist() if i.filename.startswith(('torch/lib/', 'torch/include/', 'torch/share/cmake/')) or i.filename == 'torch/version.py'))`, WHEEL], { encoding: 'utf8' }));
      const size = Math.ceil((CPU.torch.size + unpacked) / 4096) * 4096 + (1 << 20);
      assert.equal(spawnSync('mount', ['-o', `remount,size=${size}`, p.cache]).status, 0);
      await rejectsSetup(run(p), /The disk holding .* is full \(ENOSPC\) while unpacking libtorch 2\.13\.0.*VIDEOMAE_CACHE_DIR.*previous setup, if any, is still in place/);
      assert.deepEqual(fs.readdirSync(path.join(p.cache, 'tmp')), [], 'the partial install was deleted');
      assert.ok(!fs.existsSync(path.join(p.cache, 'libtorch')));
      assert.ok(!fs.existsSync(p.link));
    } finally {
      spawnSync('umount', [p.cache]);
    }
  });

  test('HTTP_PROXY is used, and NO_PROXY bypasses it', async () => {
    const seen = [];
    const proxy = http.createServer((req, res) => {
      seen.push(req.url);
      // A forwarding proxy: the request line carries the absolute URL.
      const upstream = http.request(req.url, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      upstream.end();
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.address().port}`;
      routes = { [MIRROR_PATH]: (req, res) => res.writeHead(302, { location: '/elsewhere' }).end(), '/elsewhere': (req, res) => res.writeHead(404).end() };
      await rejectsSetup(run(paths()), /HTTP 404/);
      assert.deepEqual(seen, [`${base}${MIRROR_PATH}`, `${base}/elsewhere`]);
      process.env.NO_PROXY = '127.0.0.1';
      await rejectsSetup(run(paths()), /HTTP 404/);
      assert.equal(seen.length, 2, 'NO_PROXY=127.0.0.1 went direct');
    } finally {
      delete process.env.HTTP_PROXY;
      delete process.env.NO_PROXY;
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('--from (offline)', () => {
  test('the pinned wheel needs no download; with the build in the cache it is only relinked', { skip: skipWheel }, async () => {
    // (test/helpers/libtorch.js unpacks the wheels with --from for the other suites.)
    const p = { ...paths(), cache: installed.cache };
    const r = await run(p, { from: WHEEL, env: { VIDEOMAE_LIBTORCH_MIRROR: 'http://127.0.0.1:9/unused' } });
    assert.equal(r.source, 'cache');
    assert.equal(fs.readlinkSync(p.link), r.dir);
    assert.equal(r.libtorch.version, '2.13.0');
    assert.deepEqual(requests, []);
  });

  test('a folder is linked in place', async () => {
    const p = paths();
    const r = await run(p, { from: tree });
    assert.equal(r.source, 'folder');
    assert.equal(fs.readlinkSync(p.link), fs.realpathSync(path.join(tree, 'libtorch')));
    assert.equal(r.libtorch.version, '2.4.1');
    assert.deepEqual(requests, []);
  });

  test('a folder that is neither libtorch nor wheels is refused with what is missing', async () => {
    await rejectsSetup(run(paths(), { from: path.join(work, 'tree', 'libtorch', 'include') }), /official layout: missing lib\/ with libc10/);
  });

  test('an nvidia-* wheel alone is refused: the torch wheel is what to pass', async () => {
    const cu = pinOf('cu130');
    const lone = path.join(work, cu.deps[0].file);
    fs.writeFileSync(lone, 'x');
    await rejectsSetup(run(paths(), { from: lone }), /one of the nvidia-\* wheels of libtorch 2\.14\.1 \(cu130\); pass the torch wheel/);
  });

  test('an unpinned .zip or .tar.gz is unpacked into the cache; --sha256 is checked', async () => {
    const p = paths();
    const r = await run(p, { from: zipFile, sha256: sha256(zipBytes) });
    assert.equal(r.source, 'archive');
    assert.equal(r.dir, path.join(p.cache, 'libtorch', `local-${sha256(zipBytes).slice(0, 12)}`, 'torch'));
    assert.ok(fs.existsSync(path.join(p.link, 'include', 'torch', 'script.h')));
    await rejectsSetup(run(p, { from: zipFile, sha256: 'f'.repeat(64) }), /Checksum mismatch/);

    const tgz = archive('tgz', officialTree(path.join(p.dir, 'tgz-src'), '2.4.1+cpu'), 'lt.tar.gz',
      [{ name: 'libtorch/lib/libc10.so.2', link: 'libc10.so' }]);
    const t = await run(p, { from: tgz });
    assert.equal(t.libtorch.version, '2.4.1');
    assert.equal(fs.readlinkSync(path.join(t.dir, 'lib', 'libc10.so.2')), 'libc10.so');
    assert.equal(fs.readlinkSync(p.link), t.dir, 'the link now points at the newer install');
    assert.deepEqual(requests, []);
  });

  test('a real folder at the link path is never replaced', async () => {
    const p = paths();
    fs.mkdirSync(p.link, { recursive: true });
    await rejectsSetup(run(p, { from: tree }), /exists and is not a link/);
  });
});

describe('unsafe archives are refused and write nothing outside', () => {
  const cases = [
    ['zip', '../evil', [{ name: '../evil', data: 'pwned' }], /climbs out with '\.\.'|invalid relative path/],
    ['tgz', '../evil', [{ name: '../evil', data: 'pwned' }], /climbs out with '\.\.'/],
    ['tgz', 'libtorch/../../evil', [{ name: 'libtorch/../../evil', data: 'pwned' }], /climbs out/],
    ['tgz', 'an absolute path', [{ name: '/tmp/vmae-evil-absolute', data: 'pwned' }], /absolute path/],
    ['tgz', 'a link out', [{ name: 'libtorch/lib/evil', link: '../../../evil' }], /points outside/],
    ['zip', 'a link out', [{ name: 'libtorch/lib/evil', link: '/etc/passwd' }], /points outside/],
  ];
  for (const [kind, what, extra, pattern] of cases) {
    test(`${kind} with ${what}`, async () => {
      const p = paths();
      const file = archive(kind, tree, `evil-${crypto.randomBytes(4).toString('hex')}.${kind === 'zip' ? 'zip' : 'tar.gz'}`, extra);
      await rejectsSetup(run(p, { from: file }), pattern);
      assert.ok(!fs.existsSync(p.link));
      assert.ok(!walk(work).some((f) => path.basename(f) === 'evil'), 'no file named evil anywhere');
      assert.ok(!fs.existsSync('/tmp/vmae-evil-absolute'));
      assert.deepEqual(fs.readdirSync(path.join(p.cache, 'tmp')), [], 'the staging folder is gone');
      assert.ok(!fs.existsSync(path.join(p.cache, 'libtorch')));
    });
  }
});

describe('the command', () => {
  test('videomae setup --from prints where libtorch went; failures exit 1 with the code', () => {
    const p = paths();
    const env = { ...process.env, VIDEOMAE_CACHE_DIR: p.cache };
    for (const k of PROXY_VARS) delete env[k];
    const ok = spawnSync(process.execPath, [path.join(ROOT, 'lib', 'cli.js'), 'setup', '--from', zipFile, '--link', p.link,
      '--sha256', sha256(zipBytes)], { env, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /libtorch 2\.4\.1 \(cpu\) is ready in /);
    assert.match(ok.stdout, /Linked as /);
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'lib', 'cli.js'), 'setup', '--cuda', 'banana', '--link', p.link],
      { env, encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /\[VMAE_SETUP_FAILED\] Expected 'auto', 'cpu' or a CUDA version/);
  });
});
