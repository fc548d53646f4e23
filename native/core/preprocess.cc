#include "core/preprocess.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.h"

namespace vmae {

namespace {
// Frames are resized a few at a time, and only their crops are kept, so that neither a long 720p
// clip nor a wide frame ever needs a float copy of it all.
constexpr int64_t kResizeChunk = 8;
constexpr int64_t kResizeChunkBytes = 256LL << 20;  // float input + output of one chunk, soft
// The resized frame is shortest_edge^2 x aspect ratio pixels: a 1x16384 frame resized to a 224
// shortest edge would be 224x3670016 (2.5 GB of uint8 per frame, 4x that in float) from 49 KB of
// input. Larger than this (e.g. 224 x 149796, or 5792 x 5792) is refused.
constexpr int64_t kMaxResizedPixels = 1LL << 25;

void Check(bool ok, const std::string& message) {
  if (!ok) throw CoreError(codes::kInvalidInput, message);
}
}  // namespace

void ValidatePreprocessParams(const PreprocessParams& p) {
  Check(p.shortest_edge > 0 && p.shortest_edge <= 8192, "shortestEdge must be in 1..8192");
  Check(p.crop_size > 0 && p.crop_size <= p.shortest_edge, "cropSize must be in 1..shortestEdge");
  for (double s : p.std) Check(s > 0, "std values must be positive");
}

std::pair<int64_t, int64_t> ResizedSize(int64_t height, int64_t width, int64_t shortest_edge) {
  const int64_t short_side = std::min(height, width);
  const int64_t long_side = std::max(height, width);
  // Same arithmetic as transformers' get_resize_output_image_size: int(S * long / short).
  const auto new_long = static_cast<int64_t>(static_cast<double>(shortest_edge * long_side) /
                                             static_cast<double>(short_side));
  return height <= width ? std::make_pair(shortest_edge, new_long)
                         : std::make_pair(new_long, shortest_edge);
}

torch::Tensor ResizeAndCrop(const torch::Tensor& frames, const PreprocessParams& p, int64_t crops) {
  ValidatePreprocessParams(p);
  Check(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
        "Expected uint8 frames of shape [N,H,W,3]");
  Check(frames.size(0) > 0 && frames.size(1) > 0 && frames.size(2) > 0, "Frames must not be empty");
  Check(crops >= 1 && crops <= 16, "crops must be in 1..16");
  const int64_t n = frames.size(0), h = frames.size(1), w = frames.size(2);
  const auto [rh, rw] = ResizedSize(h, w, p.shortest_edge);
  Check(rh <= kMaxResizedPixels / rw,
        "Frames of " + std::to_string(h) + "x" + std::to_string(w) + " would be resized to " +
            std::to_string(rh) + "x" + std::to_string(rw) + " for shortestEdge " +
            std::to_string(p.shortest_edge) + ", more than the " + std::to_string(kMaxResizedPixels) +
            " pixels preprocessing allows: the aspect ratio is too extreme");
  return TranslateErrors("preprocessing frames", codes::kRuntime, [&] {
    const int64_t s = p.crop_size;
    // Crops along the long side; the short side is always centered.
    const bool wide = rw >= rh;
    const int64_t long_len = wide ? rw : rh;
    const int64_t short_off = ((wide ? rh : rw) - s) / 2;
    std::vector<std::pair<int64_t, int64_t>> origins;  // (top, left) of each crop
    for (int64_t c = 0; c < crops; ++c) {
      const int64_t long_off = crops == 1 ? (long_len - s) / 2
                                          : static_cast<int64_t>(static_cast<double>(c * (long_len - s)) /
                                                                 static_cast<double>(crops - 1));
      origins.emplace_back(wide ? short_off : long_off, wide ? long_off : short_off);
    }

    auto out = torch::empty({crops, n, s, s, 3}, frames.options());
    const int64_t frame_bytes = 3 * 4 * (h * w + rh * rw);
    const int64_t chunk = std::clamp<int64_t>(kResizeChunkBytes / frame_bytes, 1, kResizeChunk);
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto resized = frames.narrow(0, start, len).permute({0, 3, 1, 2});  // [len,3,H,W]
      if (rh != h || rw != w) {
        resized = at::_upsample_bilinear2d_aa(resized.to(torch::kFloat32), {rh, rw}, /*align_corners=*/false)
                      .round_()
                      .clamp_(0, 255)
                      .to(torch::kUInt8);
      }
      for (int64_t c = 0; c < crops; ++c) {
        const auto [top, left] = origins[c];
        out[c].narrow(0, start, len).copy_(resized.narrow(2, top, s).narrow(3, left, s).permute({0, 2, 3, 1}));
      }
    }
    return out;
  });
}

torch::Tensor Preprocess(const torch::Tensor& frames, const PreprocessParams& p, int64_t crops,
                         torch::ScalarType dtype) {
  auto cropped = ResizeAndCrop(frames, p, crops);  // [C,N,S,S,3] uint8
  return TranslateErrors("normalizing frames", codes::kRuntime, [&] {
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(cropped.device());
    auto mean = torch::tensor({p.mean[0], p.mean[1], p.mean[2]}, opts).view({1, 1, 3, 1, 1});
    auto stdv = torch::tensor({p.std[0], p.std[1], p.std[2]}, opts).view({1, 1, 3, 1, 1});
    auto x = cropped.permute({0, 1, 4, 2, 3}).to(torch::kFloat32);
    x.mul_(p.rescale_factor).sub_(mean).div_(stdv);
    return x.to(dtype).contiguous();
  });
}

}  // namespace vmae
