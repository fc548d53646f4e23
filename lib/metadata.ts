import { z } from 'zod';

import { VideoMAEError } from './errors';

/** Preprocessing the model expects (from the checkpoint's preprocessor_config.json). */
export interface Preprocessing {
  shortestEdge: number;
  cropSize: number;
  rescaleFactor: number;
  mean: number[];
  std: number[];
}

/** What a model file says about itself (docs/MODEL-FORMAT.md), validated. */
export interface ModelConfig {
  numFrames: number;
  imageSize: number;
  patchSize: number;
  tubeletSize: number;
  numChannels: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** 0 for an encoder-only model (a VideoMAEModel checkpoint): it has no labels and only embeds. */
  numLabels: number;
  labels: string[];
  /**
   * The length of embed()'s vectors (the hidden size), or null for a file exported before
   * embeddings existed (logits only): re-export it to embed.
   */
  embeddingSize: number | null;
  preprocessing: Preprocessing;
}

/** Descriptive fields of a model file. */
export interface ModelDescription {
  name: string;
  description: string;
  /** torch.__version__ of the Python that exported the file. */
  torchVersion: string;
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const Schema = z.object({
  // 1: forward returns the logits; 2: (logits, embedding), with `outputs` and config.embeddingSize
  format: z.enum(['videomae-node/1', 'videomae-node/2']),
  name: z.string().max(200),
  description: z.string().max(2000),
  torchVersion: z.string().max(64),
  outputs: z.tuple([z.literal('logits'), z.literal('embedding')]).optional(),
  config: z.object({
    numFrames: int(1, 256),
    imageSize: int(1, 2048),
    patchSize: int(1, 256),
    tubeletSize: int(1, 64),
    numChannels: int(1, 8),
    hiddenSize: int(1, 16384),
    numLayers: int(1, 256),
    numHeads: int(1, 256),
    numLabels: int(0, 100000),
    embeddingSize: int(1, 16384).optional(),
  }).passthrough(),
  labels: z.array(z.string().max(500)),
  preprocessing: z.object({
    shortestEdge: int(1, 8192),
    cropSize: int(1, 8192),
    rescaleFactor: z.number().finite().positive(),
    mean: z.array(z.number().finite()).min(1).max(8),
    std: z.array(z.number().finite().positive()).min(1).max(8),
  }),
}).passthrough();

/**
 * Parses and validates extra/videomae.json. Throws VideoMAEError VMAE_MODEL_LOAD_FAILED naming
 * the first problem; a model file is untrusted input.
 */
export function parseMetadata(json: string, path: string): { config: ModelConfig; description: ModelDescription } {
  const fail = (why: string) =>
    new VideoMAEError('VMAE_MODEL_LOAD_FAILED', `Model file '${path}' has invalid videomae.json metadata: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw fail(`not JSON (${(err as Error).message})`);
  }
  const parsed = Schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fail(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const m = parsed.data;
  const c = m.config;
  const v2 = m.format === 'videomae-node/2';
  if (v2 && (m.outputs === undefined || c.embeddingSize === undefined)) {
    throw fail('a videomae-node/2 file needs outputs ["logits", "embedding"] and config.embeddingSize');
  }
  if (!v2 && c.numLabels < 1) throw fail('config.numLabels: must be at least 1 in a videomae-node/1 file');
  if (m.labels.length !== c.numLabels) throw fail(`${m.labels.length} labels for numLabels ${c.numLabels}`);
  if (c.imageSize % c.patchSize !== 0) throw fail(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.numFrames % c.tubeletSize !== 0) throw fail(`numFrames ${c.numFrames} is not a multiple of tubeletSize ${c.tubeletSize}`);
  if (m.preprocessing.cropSize !== c.imageSize) {
    throw fail(`preprocessing.cropSize ${m.preprocessing.cropSize} differs from imageSize ${c.imageSize}`);
  }
  if (m.preprocessing.mean.length !== c.numChannels || m.preprocessing.std.length !== c.numChannels) {
    throw fail(`preprocessing mean/std must have numChannels (${c.numChannels}) values`);
  }
  if (m.preprocessing.cropSize > m.preprocessing.shortestEdge) throw fail('preprocessing.cropSize exceeds shortestEdge');
  return {
    config: {
      numFrames: c.numFrames,
      imageSize: c.imageSize,
      patchSize: c.patchSize,
      tubeletSize: c.tubeletSize,
      numChannels: c.numChannels,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      numHeads: c.numHeads,
      numLabels: c.numLabels,
      labels: [...m.labels],
      embeddingSize: v2 ? c.embeddingSize! : null,
      preprocessing: { ...m.preprocessing, mean: [...m.preprocessing.mean], std: [...m.preprocessing.std] },
    },
    description: { name: m.name, description: m.description, torchVersion: m.torchVersion },
  };
}
