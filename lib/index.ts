export { VideoClassifier } from './classifier';
export type { LoadOptions, ClassifyOptions, ModelDtype, Optimizations } from './classifier';
export type { Classification, Prediction } from './classification';
export { cosineSimilarity } from './embedding';
export type { EmbedOptions } from './embedding';
export { VideoMAEError } from './errors';
export type { ErrorCode } from './errors';
export type { ModelConfig, ModelDescription, Preprocessing } from './metadata';
export type { RequestOptions } from './requests';
export { Tensor } from './tensor';
export type { DType } from './tensor';
export { runtimeInfo } from './runtime';
export type { RawVideo, PreprocessOptions } from './video/frames';
export { readVideoClips } from './video/clips';
export type {
  ClassifyVideoOptions, EmbedVideoOptions, VideoClassification, VideoTimings, ReadClipsOptions, VideoClips,
} from './video/clips';
export type { VideoInput } from './video/video-input';
export type { VideoLimits } from './video/limits';
export { DEFAULT_LIMITS } from './video/limits';
export { sampleIndices } from './video/sampling';
export type { SamplingOptions } from './video/sampling';
export { FrameStream } from './video/stream-source';
export type { FrameStreamOptions } from './video/stream-source';
export type { StreamInput, StreamOptions, StreamResult } from './video/stream';
export type { SmoothingOptions } from './video/smoothing';
export { pipeline } from './pipeline';
export type {
  PipelineInput, PipelineLabel, PipelineOptions, PipelineCallOptions, VideoClassificationPipeline,
} from './pipeline';
