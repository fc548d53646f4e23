'use strict';
// Models for the reliability suites, on top of test/helpers/fixtures.js (all cached).
const { makeModel } = require('./fixtures');

/**
 * A model whose forward takes a few hundred ms on one thread (16 frames of 224x224, 1568 tokens, 4
 * layers of width 192), so that work is reliably running and queued behind it.
 */
function slowModel() {
  return makeModel(['--seed', '2', '--preprocessor', '--frames', '16', '--image-size', '224', '--hidden', '192',
    '--layers', '4', '--heads', '3', '--intermediate', '768', '--labels', '5']);
}

/** About 21 MB of float32 weights (width 384, 3 layers) on a 4x32x32 input: heavy to hold, quick to run. */
function heavyModel() {
  return makeModel(['--seed', '3', '--preprocessor', '--hidden', '384', '--layers', '3', '--heads', '6',
    '--intermediate', '1536', '--labels', '5']);
}

/** The [T,C,H,W] clip shape of a loaded classifier. */
function clipShape(clf) {
  const c = clf.config;
  return [c.numFrames, c.numChannels, c.imageSize, c.imageSize];
}

module.exports = { slowModel, heavyModel, clipShape };
