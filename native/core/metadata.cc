#include "core/metadata.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>
#include <torch/version.h>

#include <fstream>
#include <regex>

#include "core/errors.h"

namespace vmae {

namespace {

std::string ReadRecord(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name) {
  if (!reader.hasRecord(name)) return "";
  auto [data, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

// The exporting torch version, for messages only; the full metadata is parsed and validated in JS.
std::string FindTorchVersion(const std::string& json) {
  static const std::regex kPattern("\"torchVersion\"\\s*:\\s*\"([^\"]{1,64})\"");
  std::smatch m;
  return std::regex_search(json, m, kPattern) ? m[1].str() : "";
}

}  // namespace

ArchiveInfo ReadArchive(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary).good()) {
    throw CoreError(codes::kModelLoadFailed, "Cannot open model file '" + path +
                                                 "': it does not exist or is not readable");
  }
  return TranslateErrors("reading the model archive", codes::kModelLoadFailed, [&] {
    ArchiveInfo info;
    std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
    try {
      reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    } catch (const c10::Error& e) {
      std::string what = e.what_without_backtrace();
      if (what.find("version") != std::string::npos && what.find("supported") != std::string::npos) {
        throw CoreError(codes::kModelLoadFailed,
                        "Model file '" + path + "' was written by a newer torch than this libtorch (" +
                            TORCH_VERSION + ") can read: " + what);
      }
      throw CoreError(codes::kModelLoadFailed, "Model file '" + path +
                                                   "' is not a TorchScript archive (corrupt, "
                                                   "truncated or another format): " + what);
    }
    info.file_version = reader->version();
    info.metadata_json = ReadRecord(*reader, std::string("extra/") + kMetadataFile);
    info.config_json = ReadRecord(*reader, "extra/config.json");
    if (info.metadata_json.empty()) {
      throw CoreError(codes::kModelLoadFailed,
                      "Model file '" + path + "' has no embedded " + kMetadataFile +
                          ": it is not a videomae-node export. Export it with "
                          "`videomae export --checkpoint DIR --output model.pt`");
    }
    info.torch_version = FindTorchVersion(info.metadata_json);
    return info;
  });
}

}  // namespace vmae
