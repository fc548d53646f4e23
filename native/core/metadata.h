// Reads what export_videomae.py embeds in a model file, without running any of its code.
#pragma once

#include <cstdint>
#include <string>

namespace vmae {

// The name of the extra file that holds the model's metadata (docs/MODEL-FORMAT.md).
inline constexpr const char* kMetadataFile = "videomae.json";

struct ArchiveInfo {
  uint64_t file_version = 0;   // the TorchScript archive's format version
  std::string metadata_json;   // extra/videomae.json, verbatim
  std::string config_json;     // extra/config.json, verbatim ("" when absent)
  std::string torch_version;   // "torchVersion" from the metadata ("" when absent)
};

// Sync. Opens `path` as a TorchScript (zip) archive and reads its metadata. Throws CoreError
// VMAE_MODEL_LOAD_FAILED when the file is missing, is not a TorchScript archive, lacks
// videomae.json, or was written in a newer archive format than this libtorch reads.
ArchiveInfo ReadArchive(const std::string& path);

}  // namespace vmae
