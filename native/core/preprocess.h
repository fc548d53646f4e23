// uint8 RGB frames -> normalized pixel_values, as Hugging Face's VideoMAEImageProcessor (PIL) does.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>

namespace vmae {

struct PreprocessParams {
  int64_t shortest_edge = 224;
  int64_t crop_size = 224;
  double rescale_factor = 1.0 / 255.0;
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
};

// Sync. Throws CoreError VMAE_INVALID_INPUT unless the parameters are sane (positive sizes,
// crop_size <= shortest_edge, positive std).
void ValidatePreprocessParams(const PreprocessParams& p);

// Sync. The resized size (height, width) for a height x width frame: the short side becomes
// shortest_edge and the long side int(shortest_edge * long / short), truncated.
std::pair<int64_t, int64_t> ResizedSize(int64_t height, int64_t width, int64_t shortest_edge);

// Sync. Resizes uint8 frames [N,H,W,3] (any device) with antialiased bilinear filtering, rounded
// to uint8 like PIL's BILINEAR, and takes `crops` crops of crop_size x crop_size: one centered
// crop, or crops spread evenly along the long side. Returns uint8 [crops, N, S, S, 3]. Memory
// stays bounded: frames are resized a few at a time and only their crops kept, and a frame whose
// resized size would exceed 2^25 pixels (an extreme aspect ratio) is refused with CoreError
// VMAE_INVALID_INPUT.
torch::Tensor ResizeAndCrop(const torch::Tensor& frames, const PreprocessParams& p, int64_t crops);

// Sync. ResizeAndCrop, then x * rescale_factor, then (x - mean) / std, in float32 on the frames'
// device, cast to `dtype`. Returns [crops, N, 3, S, S]. Throws CoreError.
torch::Tensor Preprocess(const torch::Tensor& frames, const PreprocessParams& p, int64_t crops,
                         torch::ScalarType dtype);

}  // namespace vmae
