#include "core/graph_passes.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/ir/subgraph_matcher.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/attention.h"
#include "core/linear.h"

namespace vmae {

namespace {

// The GEMM rows oneDNN packs the weights for: a 16-frame 224^2 clip's 1568 tokens. Other row
// counts run with the same packing (oneDNN's blocked layouts do not depend on M).
constexpr int64_t kOneDnnRowsHint = 1568;

using torch::jit::Node;
using torch::jit::Value;

// Constants enter the pattern as inputs, so that a graph that repeats or shares its constant
// nodes still matches; the filter then checks their values.
constexpr const char* kAttentionPattern = R"IR(
graph(%q, %k, %v, %dim0, %dim1, %softmax_dim, %softmax_dtype):
  %kt = aten::transpose(%k, %dim0, %dim1)
  %scores = aten::matmul(%q, %kt)
  %probs = aten::softmax(%scores, %softmax_dim, %softmax_dtype)
  %out = aten::matmul(%probs, %v)
  return (%out))IR";

// The replacement, calling `op`.
std::string AttentionReplacement(const std::string& op) {
  return "graph(%q, %k, %v, %dim0, %dim1, %softmax_dim, %softmax_dtype):\n  %out = " + op +
         "(%q, %k, %v)\n  return (%out)";
}

bool IsIntConstant(const Value* v, int64_t want) {
  auto c = torch::jit::toIValue(v);
  return c && c->isInt() && c->toInt() == want;
}

bool IsNoneConstant(const Value* v) {
  auto c = torch::jit::toIValue(v);
  return c && c->isNone();
}

bool AttentionFilter(const torch::jit::Match& match, const std::unordered_map<std::string, Value*>& vmap) {
  auto graph_value = [&](const char* name) { return match.values_map.at(vmap.at(name)); };
  return IsIntConstant(graph_value("dim0"), -2) && IsIntConstant(graph_value("dim1"), -1) &&
         IsIntConstant(graph_value("softmax_dim"), -1) && IsNoneConstant(graph_value("softmax_dtype"));
}

int CountAttention(const torch::jit::Block* block, c10::Symbol op) {
  int count = 0;
  for (const auto* node : block->nodes()) {
    if (node->kind() == op) ++count;
    for (const auto* sub : node->blocks()) count += CountAttention(sub, op);
  }
  return count;
}

int Rewrite(torch::jit::Module& module, torch::jit::SubgraphRewriter& rewriter, c10::Symbol op) {
  int count = 0;
  for (auto& method : module.get_methods()) {
    auto graph = method.graph();
    rewriter.runOnGraph(graph, AttentionFilter);
    count += CountAttention(graph->block(), op);
  }
  for (auto child : module.children()) count += Rewrite(child, rewriter, op);
  return count;
}

}  // namespace

int FuseAttention(torch::jit::Module& module, const std::string& op) {
  RegisterAttentionOp();
  torch::jit::SubgraphRewriter rewriter;
  rewriter.RegisterRewritePattern(kAttentionPattern, AttentionReplacement(op));
  return Rewrite(module, rewriter, c10::Symbol::fromQualString(op));
}


namespace {

bool IsStringConstant(const Value* v, const char* want) {
  auto c = torch::jit::toIValue(v);
  return c && c->isString() && c->toStringRef() == want;
}

bool IsScalarOne(const Value* v) {
  auto c = torch::jit::toIValue(v);
  return c && ((c->isInt() && c->toInt() == 1) || (c->isDouble() && c->toDouble() == 1.0));
}

// Destroys a constant node once nothing uses it, releasing the tensor it holds.
void DropIfUnused(Value* v) {
  Node* node = v->node();
  if (node->kind() == c10::prim::Constant && v->uses().empty()) node->destroy();
}

}  // namespace

torch::jit::Module Freeze(const torch::jit::Module& module) { return torch::jit::freeze(module); }

namespace {
bool EnvDisables(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
}
}  // namespace

CpuLinear CpuLinearFor(torch::ScalarType dtype) {
  // Read at every load, so that one process can compare the choices (bench/ab.js).
  const char* forced = std::getenv("VIDEOMAE_CPU_LINEAR");
  if (EnvDisables("VIDEOMAE_DISABLE_FUSED_LINEAR")) return CpuLinear::kAten;
  if (forced != nullptr) {
    if (std::strcmp(forced, "aten") == 0) return CpuLinear::kAten;
    if (std::strcmp(forced, "vmae") == 0 && dtype == torch::kFloat32) return CpuLinear::kVmae;
    if (std::strcmp(forced, "onednn") == 0 && OneDnnLinearAvailable(dtype)) return CpuLinear::kOneDnn;
  }
  if (dtype == torch::kFloat32) return CpuLinear::kVmae;
  if ((dtype == torch::kBFloat16 || dtype == torch::kHalf) && OneDnnLinearAvailable(dtype)) return CpuLinear::kOneDnn;
  return CpuLinear::kAten;
}

const char* CpuLinearName(CpuLinear l) {
  switch (l) {
    case CpuLinear::kVmae: return "vmae";
    case CpuLinear::kOneDnn: return "onednn";
    default: return "aten";
  }
}

torch::jit::Module OptimizeForInference(torch::jit::Module module, const torch::Device& device,
                                        torch::ScalarType dtype, OptimizeReport* report) {
  OptimizeReport r;
  const CpuLinear linear = device.is_cpu() ? CpuLinearFor(dtype) : CpuLinear::kAten;
  if (linear != CpuLinear::kAten) {
    module = Freeze(module);
    r.frozen = true;
    r.patch_embedding = PatchEmbeddingAsLinear(module);
  }
  if (!EnvDisables("VIDEOMAE_DISABLE_FUSED_ATTENTION")) {
    const CpuAttention attention = device.is_cpu() ? CpuAttentionFor(dtype) : CpuAttention::kFused;
    if (attention == CpuAttention::kFused) r.fused_attention = FuseAttention(module, "vmae::attention");
    if (attention == CpuAttention::kSdpa) r.fused_attention = FuseAttention(module, "vmae::sdpa");
  }
  if (linear == CpuLinear::kVmae) r.fused_linear = FuseLinear(module);
  if (linear == CpuLinear::kOneDnn) r.fused_linear = FuseLinear(module, LinearBackend::kOneDnn);
  if (report) *report = r;
  return module;
}

namespace {

std::vector<int64_t> IntList(const Value* v) {
  auto c = torch::jit::toIValue(v);
  if (!c || !c->isIntList()) return {};
  return c->toIntVector();
}

Node* SoleUser(const Value* v) { return v->uses().size() == 1 ? v->uses()[0].user : nullptr; }

// conv3d(x, W, b, stride = kernel, padding 0, dilation 1, groups 1) -> flatten(2, -1) ->
// transpose(1, 2) with a constant W: returns the conv node, else null.
Node* MatchPatchEmbedding(Node* conv) {
  if (conv->kind() != c10::aten::conv3d || conv->inputs().size() != 7) return nullptr;
  auto weight = torch::jit::toIValue(conv->input(1));
  if (!weight || !weight->isTensor() || weight->toTensor().dim() != 5) return nullptr;
  const auto w = weight->toTensor();
  const std::vector<int64_t> kernel{w.size(2), w.size(3), w.size(4)};
  auto pad = IntList(conv->input(4));
  auto dil = IntList(conv->input(5));
  if (IntList(conv->input(3)) != kernel || !IsIntConstant(conv->input(6), 1)) return nullptr;
  if (pad.empty() || std::any_of(pad.begin(), pad.end(), [](int64_t p) { return p != 0; })) return nullptr;
  if (dil.empty() || std::any_of(dil.begin(), dil.end(), [](int64_t d) { return d != 1; })) return nullptr;
  Node* flatten = SoleUser(conv->output());
  if (!flatten || flatten->kind() != c10::aten::flatten || !IsIntConstant(flatten->input(1), 2) ||
      !IsIntConstant(flatten->input(2), -1)) {
    return nullptr;
  }
  Node* transpose = SoleUser(flatten->output());
  if (!transpose || transpose->kind() != c10::aten::transpose || !IsIntConstant(transpose->input(1), 1) ||
      !IsIntConstant(transpose->input(2), 2)) {
    return nullptr;
  }
  return conv;
}

}  // namespace

int PatchEmbeddingAsLinear(torch::jit::Module& frozen) {
  RegisterLinearOp();
  auto graph = frozen.get_method("forward").graph();
  std::vector<Node*> convs;
  for (Node* node : graph->nodes()) {
    if (MatchPatchEmbedding(node)) convs.push_back(node);
  }
  const auto patchify = c10::Symbol::fromQualString("vmae::patchify");
  for (Node* conv : convs) {
    Node* flatten = SoleUser(conv->output());
    Node* transpose = SoleUser(flatten->output());
    const auto w = torch::jit::toIValue(conv->input(1))->toTensor();
    Value* linear;
    {
      torch::jit::WithInsertPoint guard(transpose);
      Value* patches = graph->insert(patchify, {conv->input(0), graph->insertConstant(w.size(2)),
                                                graph->insertConstant(w.size(3)), graph->insertConstant(w.size(4))});
      Value* w2 = graph->insertConstant(w.reshape({w.size(0), -1}).contiguous());
      linear = graph->insert(c10::aten::linear, {patches, w2, conv->input(2)});
    }
    transpose->output()->replaceAllUsesWith(linear);
    Value* weight_value = conv->input(1);
    transpose->destroy();
    flatten->destroy();
    conv->destroy();
    DropIfUnused(weight_value);
  }
  torch::jit::EliminateDeadCode(graph);
  return static_cast<int>(convs.size());
}

int FuseLinear(torch::jit::Module& frozen, LinearBackend backend) {
  RegisterLinearOp();
  auto graph = frozen.get_method("forward").graph();
  const bool onednn = backend == LinearBackend::kOneDnn;
  const auto op = c10::Symbol::fromQualString(onednn ? "vmae::onednn_linear" : "vmae::linear");
  std::vector<Node*> linears;
  for (Node* node : graph->nodes()) {
    if (node->kind() == c10::aten::linear) linears.push_back(node);
  }
  int count = 0;
  for (Node* node : linears) {
    auto weight = torch::jit::toIValue(node->input(1));
    if (!weight || !weight->isTensor()) continue;
    const auto w = weight->toTensor();
    if (w.dim() != 2 || !w.device().is_cpu()) continue;
    if (!onednn && w.scalar_type() != torch::kFloat32) continue;
    Value* out = node->output();
    Node* absorbed = nullptr;
    int64_t activation = 0;
    Value* residual = nullptr;
    if (out->uses().size() == 1) {
      Node* user = out->uses()[0].user;
      if (user->kind() == c10::aten::gelu && user->inputs().size() == 2 && user->input(0) == out &&
          IsStringConstant(user->input(1), "none")) {
        absorbed = user;
        activation = 1;
      } else if (user->kind() == c10::aten::add && user->inputs().size() == 3 && IsScalarOne(user->input(2)) &&
                 user->input(0) != user->input(1) && user->input(0)->type()->cast<c10::TensorType>() &&
                 user->input(1)->type()->cast<c10::TensorType>()) {
        absorbed = user;
        residual = user->input(0) == out ? user->input(1) : user->input(0);
      }
    }
    Node* last = absorbed ? absorbed : node;
    Value* fused;
    {
      torch::jit::WithInsertPoint guard(last);
      Value* none = graph->insertConstant(c10::IValue());
      if (onednn) {
        // oneDNN's packed weight is an opaque tensor, which a graph constant cannot hold: it
        // becomes an attribute of the frozen module, read through `self`.
        const std::string name = "_vmae_onednn_weight_" + std::to_string(count);
        frozen.register_attribute(name, c10::TensorType::get(), PackOneDnnLinearWeight(w, kOneDnnRowsHint));
        Value* packed = graph->insertGetAttr(graph->inputs().at(0), name);
        fused = graph->insert(op, {node->input(0), packed, node->input(2), residual ? residual : none,
                                   graph->insertConstant(activation)});
      } else {
        Value* packed = graph->insertConstant(PackLinearWeight(w));
        fused = graph->insert(op, {node->input(0), packed, node->input(2), residual ? residual : none,
                                   graph->insertConstant(activation), graph->insertConstant(w.size(0))});
      }
    }
    last->output()->replaceAllUsesWith(fused);
    Value* weight_value = node->input(1);
    if (absorbed) absorbed->destroy();
    node->destroy();
    DropIfUnused(weight_value);
    ++count;
  }
  torch::jit::EliminateDeadCode(graph);
  return count;
}

}  // namespace vmae
