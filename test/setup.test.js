'use strict';
// `videomae setup` over its real download path, against an HTTP server on 127.0.0.1 that serves a
// small archive in the official libtorch layout (built here from a few Debian libtorch files).
// No traffic leaves 127.0.0.1: the mirror is VIDEOMAE_LIBTORCH_MIRROR and proxies are cleared.
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { after, before, beforeEach, describe, test } = require('node:test');

const ROOT = path.join(__dirname, '..');
const { setup } = require('../lib/setup');
const { choosePin, parseDriverCuda, platformPins, PINS, LIBTORCH_VERSION } = require('../lib/setup/pins');

const PYTHON = process.env.VIDEOMAE_PYTHON || '/usr/bin/python3';
const CPU_PATH = `/libtorch/cpu/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2Bcpu.zip`;
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'npm_config_proxy', 'npm_config_https_proxy',
  'npm_config_http_proxy', 'npm_config_no_proxy'];

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
let tree; // a folder holding libtorch/ in the official layout
let zipFile;
let zipBytes;
let server;
let base; // http://127.0.0.1:<port>
let routes; // url -> handler(req, res)
let requests; // urls the server saw
let savedEnv;

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

function serve(body) {
  return (req, res) => {
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.end(body);
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
    env: { VIDEOMAE_CACHE_DIR: p.cache, VIDEOMAE_LIBTORCH_MIRROR: `${base}/libtorch`, PATH: '/nonexistent', ...options.env },
  });
}

async function rejectsSetup(promise, pattern) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, 'VMAE_SETUP_FAILED', err.stack);
    assert.match(err.message, pattern);
    return true;
  });
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

before(async () => {
  savedEnv = Object.fromEntries(PROXY_VARS.flatMap((k) => [k, k.toLowerCase()]).map((k) => [k, process.env[k]]));
  for (const k of Object.keys(savedEnv)) delete process.env[k];
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmae-setup-'));
  tree = officialTree(path.join(work, 'tree'), `${LIBTORCH_VERSION}+cpu`);
  zipFile = archive('zip', tree, 'libtorch.zip');
  zipBytes = fs.readFileSync(zipFile);
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
  routes = { [CPU_PATH]: serve(zipBytes) };
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
    const pins = platformPins({}, 'linux-x64');
    assert.equal(parseDriverCuda('| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |'), 12.4);
    assert.equal(parseDriverCuda('no driver'), undefined);
    assert.equal(choosePin('auto', pins, undefined).pin.flavor, 'cpu');
    assert.equal(choosePin('auto', pins, 12.4).pin.flavor, 'cu124');
    assert.equal(choosePin('auto', pins, 12.8).pin.flavor, 'cu124');
    assert.equal(choosePin('auto', pins, 12.2).pin.flavor, 'cu121');
    assert.equal(choosePin('auto', pins, 11.4).pin.flavor, 'cpu');
    assert.equal(choosePin('12.1', pins, undefined).pin.flavor, 'cu121');
    assert.equal(choosePin('12.6', pins, undefined).pin.flavor, 'cu124');
    assert.equal(choosePin('cpu', pins, 12.4).pin.flavor, 'cpu');
    assert.throws(() => choosePin('11.0', pins, undefined), /No pinned libtorch archive runs on CUDA 11\.0/);
    assert.throws(() => choosePin('cuda', pins, undefined), /Expected 'auto', 'cpu' or a CUDA version/);
  });

  test('pins name official URLs; unverified checksums are null, never invented', () => {
    for (const pin of PINS['linux-x64']) {
      assert.match(pin.path, new RegExp(`^${pin.flavor}/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2B${pin.flavor}\\.zip$`));
      assert.ok(pin.sha256 === null || /^[0-9a-f]{64}$/.test(pin.sha256));
    }
    const over = platformPins({ VIDEOMAE_SETUP_PINS_JSON: JSON.stringify({ cpu: { sha256: 'A'.repeat(64) } }) }, 'linux-x64');
    assert.equal(over.find((p) => p.flavor === 'cpu').sha256, 'a'.repeat(64));
    assert.throws(() => platformPins({ VIDEOMAE_SETUP_PINS_JSON: '{"cpu": {"sha256": "xyz"}}' }, 'linux-x64'),
      (e) => e.code === 'VMAE_SETUP_FAILED' && /VIDEOMAE_SETUP_PINS_JSON is not valid/.test(e.message));
  });
});

describe('download', () => {
  test('success: verified, unpacked into the cache, linked; a second run reuses the cache', async () => {
    const p = paths();
    const r = await run(p, { sha256: sha256(zipBytes) });
    assert.equal(r.source, 'download');
    assert.equal(r.dir, path.join(p.cache, 'libtorch', `${LIBTORCH_VERSION}+cpu`));
    assert.equal(r.libtorch.version, LIBTORCH_VERSION);
    assert.equal(r.libtorch.flavor, 'cpu');
    assert.equal(fs.readlinkSync(p.link), r.dir);
    assert.ok(fs.existsSync(path.join(p.link, 'lib', 'libc10.so')));
    assert.ok(fs.existsSync(path.join(p.link, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')));
    assert.deepEqual(fs.readdirSync(path.join(p.cache, 'downloads')), [], 'the archive and no partial file remain');
    assert.deepEqual(requests, [CPU_PATH]);

    const again = await run(p, { sha256: sha256(zipBytes) });
    assert.equal(again.source, 'cache');
    assert.deepEqual(requests, [CPU_PATH], 'no second download');
    const forced = await run(p, { sha256: sha256(zipBytes), force: true });
    assert.equal(forced.source, 'download');
  });

  test('the sha256 can come from VIDEOMAE_SETUP_PINS_JSON (mirrors), and --cuda auto reads nvidia-smi', async () => {
    const p = paths();
    const bin = path.join(p.dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'nvidia-smi'), '#!/bin/sh\necho "| NVIDIA-SMI 535.1   Driver Version: 535.1   CUDA Version: 12.2 |"\n', { mode: 0o755 });
    const cu121 = officialTree(path.join(p.dir, 'cu121'), `${LIBTORCH_VERSION}+cu121`);
    const zip = fs.readFileSync(archive('zip', cu121, 'cu121.zip'));
    const url = `/libtorch/cu121/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2Bcu121.zip`;
    routes[url] = serve(zip);
    const r = await run(p, {
      cuda: 'auto',
      env: { PATH: bin, VIDEOMAE_SETUP_PINS_JSON: JSON.stringify({ cu121: { sha256: sha256(zip) } }) },
    });
    assert.deepEqual(requests, [url]);
    assert.equal(r.libtorch.flavor, 'cu121');
    assert.match(r.note, /CUDA 12\.2/);
  });

  test('an archive without a verified sha256 is refused before any download', async () => {
    const p = paths();
    // A pin without a sha256, as the built-in pins are until someone verifies them.
    const env = { VIDEOMAE_SETUP_PINS_JSON: JSON.stringify({ cu999: { path: 'cu999/libtorch.zip' } }) };
    await rejectsSetup(run(p, { cuda: '99.9', env }), /cu999 archive has no verified sha256[\s\S]*--sha256[\s\S]*--from/);
    assert.deepEqual(requests, []);
    assert.ok(!fs.existsSync(p.link));
  });

  test('checksum mismatch: rejected, nothing kept, no link', async () => {
    const p = paths();
    await rejectsSetup(run(p, { sha256: '0'.repeat(64) }), /Checksum mismatch.*expected sha256 0{64}, got [0-9a-f]{64}/);
    assert.deepEqual(fs.readdirSync(path.join(p.cache, 'downloads')), []);
    assert.ok(!fs.existsSync(p.link));
    assert.ok(!fs.existsSync(path.join(p.cache, 'libtorch')));
  });

  test('truncated body (Content-Length larger than what arrives): rejected, partial file deleted', async () => {
    const p = paths();
    routes[CPU_PATH] = (req, res) => {
      res.writeHead(200, { 'content-length': zipBytes.length + 1000 });
      res.write(zipBytes, () => res.socket.destroy());
    };
    await rejectsSetup(run(p, { sha256: sha256(zipBytes) }), new RegExp(`truncated: received \\d+ of ${zipBytes.length + 1000} bytes`));
    assert.deepEqual(fs.readdirSync(path.join(p.cache, 'downloads')), []);
    assert.ok(!fs.existsSync(p.link));
  });

  test('HTTP 404 is reported with the URL', async () => {
    const p = paths();
    routes = {};
    await rejectsSetup(run(p, { sha256: sha256(zipBytes) }), new RegExp(`HTTP 404 Not Found for ${base}${CPU_PATH.replace(/[.+]/g, '\\$&')}`));
  });

  test('redirects are followed (302 to another path), up to a limit', async () => {
    const p = paths();
    routes = {
      [CPU_PATH]: (req, res) => {
        res.writeHead(302, { location: '/elsewhere/archive.zip' });
        res.end();
      },
      '/elsewhere/archive.zip': serve(zipBytes),
    };
    const r = await run(p, { sha256: sha256(zipBytes) });
    assert.equal(r.source, 'download');
    assert.deepEqual(requests, [CPU_PATH, '/elsewhere/archive.zip']);

    routes = {
      [CPU_PATH]: (req, res) => {
        res.writeHead(302, { location: CPU_PATH });
        res.end();
      },
    };
    requests = [];
    await rejectsSetup(run(paths(), { sha256: sha256(zipBytes) }), /Too many redirects \(more than 5\)/);
    assert.equal(requests.length, 6);
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
      await run(paths(), { sha256: sha256(zipBytes) });
      assert.deepEqual(seen, [`${base}${CPU_PATH}`]);
      process.env.NO_PROXY = '127.0.0.1';
      await run(paths(), { sha256: sha256(zipBytes) });
      assert.equal(seen.length, 1, 'NO_PROXY=127.0.0.1 went direct');
    } finally {
      delete process.env.HTTP_PROXY;
      delete process.env.NO_PROXY;
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('--from (offline)', () => {
  test('a folder is linked in place', async () => {
    const p = paths();
    const r = await run(p, { from: tree });
    assert.equal(r.source, 'folder');
    assert.equal(fs.readlinkSync(p.link), fs.realpathSync(path.join(tree, 'libtorch')));
    assert.equal(r.libtorch.version, LIBTORCH_VERSION);
    assert.deepEqual(requests, []);
  });

  test('a folder that is not libtorch is refused with what is missing', async () => {
    const p = paths();
    await rejectsSetup(run(p, { from: work }), /official layout: missing lib\/ with libc10/);
  });

  test('a .zip and a .tar.gz (with an inner link) are unpacked into the cache; --sha256 is checked', async () => {
    const p = paths();
    const r = await run(p, { from: zipFile, sha256: sha256(zipBytes) });
    assert.equal(r.source, 'archive');
    assert.equal(r.dir, path.join(p.cache, 'libtorch', `${LIBTORCH_VERSION}+cpu`));
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
    assert.match(ok.stdout, new RegExp(`libtorch ${LIBTORCH_VERSION.replace(/\./g, '\\.')} \\(cpu\\) is ready in `));
    assert.match(ok.stdout, /Linked as /);
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'lib', 'cli.js'), 'setup', '--cuda', 'banana', '--link', p.link],
      { env, encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /\[VMAE_SETUP_FAILED\] Expected 'auto', 'cpu' or a CUDA version/);
  });
});
