#include "core/graph_passes.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/ir/subgraph_matcher.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/attention.h"
#include "core/linear.h"

namespace vmae {

namespace {

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

constexpr const char* kAttentionReplacement = R"IR(
graph(%q, %k, %v, %dim0, %dim1, %softmax_dim, %softmax_dtype):
  %out = vmae::attention(%q, %k, %v)
  return (%out))IR";

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

int FuseAttention(torch::jit::Module& module) {
  RegisterAttentionOp();
  torch::jit::SubgraphRewriter rewriter;
  rewriter.RegisterRewritePattern(kAttentionPattern, kAttentionReplacement);
  return Rewrite(module, rewriter, c10::Symbol::fromQualString("vmae::attention"));
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

torch::jit::Module OptimizeForInference(torch::jit::Module module, const torch::Device& device,
                                        torch::ScalarType dtype, OptimizeReport* report) {
  OptimizeReport r;
  const bool linear = device.is_cpu() && dtype == torch::kFloat32 && !EnvDisables("VIDEOMAE_DISABLE_FUSED_LINEAR");
  if (linear) {
    module = Freeze(module);
    r.frozen = true;
  }
  if (!EnvDisables("VIDEOMAE_DISABLE_FUSED_ATTENTION")) r.fused_attention = FuseAttention(module);
  if (linear) r.fused_linear = FuseLinear(module);
  if (report) *report = r;
  return module;
}

int FuseLinear(torch::jit::Module& frozen) {
  RegisterLinearOp();
  auto graph = frozen.get_method("forward").graph();
  const auto op = c10::Symbol::fromQualString("vmae::linear");
  std::vector<Node*> linears;
  for (Node* node : graph->nodes()) {
    if (node->kind() == c10::aten::linear) linears.push_back(node);
  }
  int count = 0;
  for (Node* node : linears) {
    auto weight = torch::jit::toIValue(node->input(1));
    if (!weight || !weight->isTensor()) continue;
    const auto w = weight->toTensor();
    if (w.dim() != 2 || !w.device().is_cpu() || w.scalar_type() != torch::kFloat32) continue;
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
      Value* packed = graph->insertConstant(PackLinearWeight(w));
      Value* none = graph->insertConstant(c10::IValue());
      fused = graph->insert(op, {node->input(0), packed, node->input(2), residual ? residual : none,
                                 graph->insertConstant(activation), graph->insertConstant(w.size(0))});
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
