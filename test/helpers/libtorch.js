'use strict';
// The real libtorch builds the tests need, installed by `videomae setup --from <official wheel>`
// (verified against the pins) into one cache shared by every suite and kept between runs:
// test/.cache/setup/. Its folders are named by the pinned wheel's sha256, so a pin bump installs
// afresh and the slow part (the CUDA wheels: about 2.5 GB to verify and unpack) is paid once per
// checkout, not once per suite.
//
// Where the wheels are: VIDEOMAE_TEST_WHEELS (':'-separated folders), else /opt/wheels and
// /opt/pypi-more/files. A flavor whose wheels are missing is reported, and its tests skip.
const fs = require('node:fs');
const path = require('node:path');

const { setup } = require('../../lib/setup');
const { platformPins } = require('../../lib/setup/pins');
const { CACHE } = require('./fixtures');

const SETUP_CACHE = path.join(CACHE, 'setup');
const WHEEL_DIRS = (process.env.VIDEOMAE_TEST_WHEELS || '/opt/wheels:/opt/pypi-more/files').split(path.delimiter).filter(Boolean);

/** The pin of a flavor ('cpu', 'cu130'). */
function pinOf(flavor) {
  return platformPins().find((p) => p.flavor === flavor);
}

/** The folder holding `file` among the wheel folders, or undefined. */
function wheelDir(file) {
  return WHEEL_DIRS.find((d) => fs.existsSync(path.join(d, file)));
}

/** Why a flavor cannot be set up here (a missing wheel), or false. */
function missingWheels(flavor) {
  const pin = pinOf(flavor);
  if (!pin) return `no ${flavor} pin on this platform`;
  const missing = [pin.torch, ...pin.deps].filter((w) => !wheelDir(w.file)).map((w) => w.file);
  return missing.length ? `wheels not found in ${WHEEL_DIRS.join(', ')}: ${missing.join(', ')}` : false;
}

/**
 * Sets up the flavor's libtorch from the on-disk wheels into the shared cache (a cache hit after the
 * first time) and links it at `link`. Async; resolves with setup's result.
 */
async function sharedLibtorch(flavor, link) {
  const pin = pinOf(flavor);
  const dir = wheelDir(pin.torch.file);
  // The nvidia-* wheels must sit beside the torch wheel for --from; gather links to them if not.
  let from = path.join(dir, pin.torch.file);
  if (pin.deps.some((w) => wheelDir(w.file) !== dir)) {
    const house = path.join(SETUP_CACHE, `wheelhouse-${pin.torch.sha256.slice(0, 12)}`);
    fs.mkdirSync(house, { recursive: true });
    for (const w of [pin.torch, ...pin.deps]) {
      const at = path.join(house, w.file);
      if (!fs.existsSync(at)) fs.symlinkSync(path.join(wheelDir(w.file), w.file), at);
    }
    from = path.join(house, pin.torch.file);
  }
  return setup({ from, link, log: () => {}, progress: false, env: { ...process.env, VIDEOMAE_CACHE_DIR: SETUP_CACHE } });
}

module.exports = { SETUP_CACHE, WHEEL_DIRS, pinOf, wheelDir, missingWheels, sharedLibtorch };
