#!/usr/bin/env python3
"""Export a Hugging Face VideoMAE checkpoint to a videomae-node model file.

    python3 scripts/export_videomae.py --checkpoint DIR --output model.pt \
        [--name NAME] [--description TEXT] [--verify] [--trust-pickle]

Input: a folder with ``config.json`` and ``model.safetensors`` (preferred) or
``pytorch_model.bin`` (or their sharded ``*.index.json`` forms), and optionally
``preprocessor_config.json``. Without a folder of that name, and with ``huggingface_hub``
installed, DIR is taken as a hub model id.

Output: one TorchScript file (``torch.jit.script``, not frozen) with the extra files
``videomae.json`` and ``config.json``; see docs/MODEL-FORMAT.md. Its forward returns
``(logits, embedding)``.

Two kinds of checkpoint:
* ``VideoMAEForVideoClassification`` (has ``classifier.*``): the module computes exactly what
  transformers computes in eval mode: the logits, and as the embedding the pooled features that
  feed the classifier (mean pooling + fc_norm, or the final LayerNorm's token 0).
* ``VideoMAEModel`` or ``VideoMAEForPreTraining`` (no head; the decoder is ignored): an encoder-only
  model with no labels (logits [B, 0]) whose embedding is ``last_hidden_state.mean(1)``, the final
  LayerNorm included where the config has one (use_mean_pooling false).
See scripts/videomae_model.py for the details: tubelet Conv3d embedding, fixed sinusoid position
table (buffer), pre-LN transformer blocks with exact GELU. For speed Q/K/V are fused into one
linear and 1/sqrt(head_dim) is folded into its query rows.

Both transformers key layouts are accepted: 4.x (``q_bias``/``v_bias``, zero key bias) and 5.x
(``query.bias``/``key.bias``/``value.bias``). transformers 5.x itself loads a 4.x-layout checkpoint
with its q/v biases silently zeroed; this exporter keeps them (docs/MODEL-FORMAT.md).

TorchScript on torch >= 2.x: torch marks ``torch.jit`` as deprecated in favour of
``torch.export``. The exporter silences those warnings and prints one note instead: the file it
writes is loaded by libtorch's C++ ``torch::jit::load``, which the addon uses, and that keeps
working.

Security: safetensors is parsed by our own defensive reader; ``pytorch_model.bin`` is loaded with
``torch.load(weights_only=True)`` and refused if it needs to run code, unless ``--trust-pickle``.

Exit status: 0 ok, 2 bad input (missing/invalid checkpoint), 1 verification failure or
unexpected error.
"""

import argparse
import json
import math
import os
import pickle
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# videomae-node/2: forward returns (logits, embedding). /1 files (logits only) still load.
FORMAT = "videomae-node/2"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
VERIFY_TOLERANCE = 1e-3

HF_DEFAULTS = {
    "image_size": 224, "patch_size": 16, "num_channels": 3, "num_frames": 16, "tubelet_size": 2,
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    "qkv_bias": True, "use_mean_pooling": True,
}

# Keys that may be present in a checkpoint but are not used by the exported module.
IGNORED_PREFIXES = ("decoder.", "encoder_to_decoder.", "mask_token",
                    "videomae.embeddings.position_embeddings", "position_embeddings")


class ExportError(Exception):
    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


def log(msg):
    print(msg, flush=True)


def warn(msg):
    print("warning: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Checkpoint location

def resolve_checkpoint(arg):
    """Returns (folder, display_name_hint)."""
    if os.path.isdir(arg):
        return arg, None
    if os.path.exists(arg):
        raise ExportError("--checkpoint %s is not a folder (expected a Hugging Face checkpoint "
                          "folder with config.json and model.safetensors or pytorch_model.bin)" % arg)
    # a hub id is "name" or "namespace/name"; anything else is a folder that is not there
    if os.path.isabs(arg) or arg.startswith((".", "~")) or arg.count("/") > 1 or os.sep in arg.replace("/", ""):
        raise ExportError("--checkpoint %s is not a folder (no such folder)" % arg)
    try:
        import huggingface_hub  # noqa: F401
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ExportError("--checkpoint %s is not a folder (and huggingface_hub is not installed, "
                          "so it cannot be downloaded as a hub id)" % arg)
    log("downloading %s from the Hugging Face hub ..." % arg)
    try:
        folder = snapshot_download(arg, allow_patterns=["*.json", "*.safetensors"])
        if not any(f.endswith(".safetensors") for f in os.listdir(folder)):
            folder = snapshot_download(arg, allow_patterns=["*.json", "pytorch_model*.bin"])
    except Exception as e:  # network, auth, unknown repo ...
        raise ExportError("could not download %s from the hub: %s" % (arg, _one_line(e)))
    return folder, arg.rstrip("/").split("/")[-1]


_jit_noted = False


def jit_call(fn, *args, **kwargs):
    """Calls torch.jit.script/save/load. torch >= 2.x warns on each that TorchScript is deprecated
    in favour of torch.export; those warnings become one note that says what it means here. Other
    warnings pass through unchanged."""
    global _jit_noted
    import torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) and "torch.jit" in str(w.message):
            if not _jit_noted:
                _jit_noted = True
                log("note: torch %s reports TorchScript (torch.jit) as deprecated in favour of "
                    "torch.export. This file is unaffected: videomae-node loads it with libtorch's "
                    "C++ torch::jit::load, which keeps working, and the .pt written here is what the "
                    "addon loads." % torch.__version__)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def _one_line(e):
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)


# ---------------------------------------------------------------------------------------------
# Config

def _pos_int(cfg, key):
    v = cfg[key]
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ExportError("config.json: %s must be a positive integer, got %r" % (key, v))
    return v


def _bool(cfg, key):
    v = cfg[key]
    if not isinstance(v, bool):
        raise ExportError("config.json: %s must be true or false, got %r" % (key, v))
    return v


def read_config(raw):
    """Normalise a parsed config.json (HF VideoMAEConfig defaults for absent keys)."""
    if not isinstance(raw, dict):
        raise ExportError("config.json is not a JSON object")
    mt = raw.get("model_type")
    if mt is not None and mt != "videomae":
        raise ExportError("config.json: model_type is %r, expected \"videomae\"" % (mt,))
    cfg = dict(HF_DEFAULTS)
    cfg.update({k: raw[k] for k in HF_DEFAULTS if k in raw and raw[k] is not None})
    img = cfg["image_size"]
    if isinstance(img, (list, tuple)):
        if len(img) != 2 or img[0] != img[1]:
            raise ExportError("config.json: only square image_size is supported, got %r" % (img,))
        cfg["image_size"] = img[0]
    pat = cfg["patch_size"]
    if isinstance(pat, (list, tuple)):
        if len(pat) != 2 or pat[0] != pat[1]:
            raise ExportError("config.json: only square patch_size is supported, got %r" % (pat,))
        cfg["patch_size"] = pat[0]
    for k in ("image_size", "patch_size", "num_channels", "num_frames", "tubelet_size",
              "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        cfg[k] = _pos_int(cfg, k)
    for k in ("qkv_bias", "use_mean_pooling"):
        cfg[k] = _bool(cfg, k)
    if cfg["hidden_act"] != "gelu":
        raise ExportError("config.json: hidden_act %r is not supported (only \"gelu\")"
                          % (cfg["hidden_act"],))
    eps = cfg["layer_norm_eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 < eps < 1):
        raise ExportError("config.json: layer_norm_eps must be a small positive number, got %r" % (eps,))
    cfg["layer_norm_eps"] = float(eps)
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ExportError("config.json: hidden_size %d is not a multiple of num_attention_heads %d"
                          % (cfg["hidden_size"], cfg["num_attention_heads"]))
    if cfg["image_size"] < cfg["patch_size"] or cfg["num_frames"] < cfg["tubelet_size"]:
        raise ExportError("config.json: image_size/num_frames smaller than patch_size/tubelet_size")
    for k in ("image_size", "num_frames"):
        div = cfg["patch_size"] if k == "image_size" else cfg["tubelet_size"]
        if cfg[k] % div:
            warn("%s %d is not a multiple of %d; the remainder is ignored (as in transformers)"
                 % (k, cfg[k], div))
    return cfg


def labels_from_config(raw, num_labels):
    id2label = raw.get("id2label") if isinstance(raw, dict) else None
    by_index = {}
    if isinstance(id2label, dict):
        for k, v in id2label.items():
            try:
                i = int(k)
            except (TypeError, ValueError):
                continue
            if isinstance(v, str) and 0 <= i < num_labels:
                by_index[i] = v
        if len(id2label) != num_labels:
            warn("config.json id2label has %d entries but the classifier has %d outputs"
                 % (len(id2label), num_labels))
    missing = [i for i in range(num_labels) if i not in by_index]
    if missing and by_index:
        warn("id2label does not name %d of the %d classes; using LABEL_i for those"
             % (len(missing), num_labels))
    return [by_index.get(i, "LABEL_%d" % i) for i in range(num_labels)]


def _num(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ExportError("preprocessor_config.json: %s must be a number, got %r" % (what, v))
    return float(v)


def _side(v, what, keys):
    if isinstance(v, bool):
        v = None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, dict):
        for k in keys:
            if k in v:
                if k in ("height", "width") and v.get("height") != v.get("width") and \
                        "height" in v and "width" in v:
                    warn("preprocessor_config.json: %s is not square (%r); using the height" % (what, v))
                return int(v[k])
    raise ExportError("preprocessor_config.json: cannot read %s from %r" % (what, v))


def read_preprocessing(folder, num_channels, image_size):
    # Without preprocessor_config.json: the Kinetics checkpoints' values (shortest edge and crop
    # 224 = their image_size, 1/255, ImageNet mean/std), with the sizes following the model's own
    # image_size so that smaller or larger models stay consistent.
    default = {"shortestEdge": image_size, "cropSize": image_size, "rescaleFactor": 1 / 255,
               "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    path = os.path.join(folder, "preprocessor_config.json")
    if not os.path.isfile(path):
        return default, False
    try:
        with open(path, "rb") as f:
            pp = json.loads(f.read().decode("utf-8"))
    except ValueError as e:
        raise ExportError("preprocessor_config.json is not valid JSON: %s" % _one_line(e))
    if not isinstance(pp, dict):
        raise ExportError("preprocessor_config.json is not a JSON object")
    out = dict(default)
    if "size" in pp:
        size = pp["size"]
        if isinstance(size, dict) and "shortest_edge" not in size:
            warn("preprocessor_config.json: size %r is not a shortest_edge resize; videomae-node "
                 "resizes the short side to the height" % (size,))
        out["shortestEdge"] = _side(size, "size", ("shortest_edge", "height", "width"))
    if pp.get("do_resize") is False:
        warn("preprocessor_config.json: do_resize is false; videomae-node always resizes")
    if "crop_size" in pp:
        out["cropSize"] = _side(pp["crop_size"], "crop_size", ("height", "width"))
    if pp.get("do_center_crop") is False:
        warn("preprocessor_config.json: do_center_crop is false; videomae-node always crops")
    if "rescale_factor" in pp:
        out["rescaleFactor"] = _num(pp["rescale_factor"], "rescale_factor")
    if pp.get("do_rescale") is False:
        out["rescaleFactor"] = 1.0
    for key, dst in (("image_mean", "mean"), ("image_std", "std")):
        if key in pp:
            v = pp[key]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = [v] * num_channels
            if not isinstance(v, list) or not v:
                raise ExportError("preprocessor_config.json: %s must be a list of numbers" % key)
            out[dst] = [_num(x, key) for x in v]
    if pp.get("do_normalize") is False:
        out["mean"] = [0.0] * num_channels
        out["std"] = [1.0] * num_channels
    for dst in ("mean", "std"):
        if len(out[dst]) != num_channels:
            raise ExportError("preprocessor_config.json: %d %s values for %d channels"
                              % (len(out[dst]), dst, num_channels))
    if any(s <= 0 for s in out["std"]):
        raise ExportError("preprocessor_config.json: image_std must be positive")
    if out["shortestEdge"] <= 0 or out["cropSize"] <= 0 or out["rescaleFactor"] <= 0:
        raise ExportError("preprocessor_config.json: sizes and rescale_factor must be positive")
    if out["cropSize"] > out["shortestEdge"]:
        raise ExportError("preprocessor_config.json: crop_size %d is larger than size %d"
                          % (out["cropSize"], out["shortestEdge"]))
    return out, True


# ---------------------------------------------------------------------------------------------
# Weights

def _safe_member(folder, name, index_name):
    if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
        raise ExportError("%s: bad shard file name %r" % (index_name, name))
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise ExportError("%s names %s, which is missing" % (index_name, name))
    return path


def _load_safetensors(path):
    import torch
    import safetensors_lite
    try:
        arrays = safetensors_lite.load_file(path)
    except ValueError as e:
        raise ExportError("invalid safetensors file: %s" % e)
    return {k: torch.from_numpy(a) for k, a in arrays.items()}


def _load_bin(path, trust_pickle):
    import inspect
    import torch
    has_wo = "weights_only" in inspect.signature(torch.load).parameters
    name = os.path.basename(path)
    if not trust_pickle:
        if not has_wo:
            raise ExportError("%s: this torch (%s) cannot load pickles safely (no weights_only); "
                              "convert the checkpoint to safetensors or pass --trust-pickle if you "
                              "trust the file" % (name, torch.__version__))
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise ExportError("%s: refusing to load: the pickle wants to run code or build objects "
                              "other than tensors%s. Pass --trust-pickle only if you trust the "
                              "file's source, or convert it to model.safetensors."
                              % (name, _pickle_detail(e)))
        except Exception as e:
            raise ExportError("%s: cannot load: %s" % (name, _one_line(e)))
    else:
        warn("--trust-pickle: loading %s with full unpickling (can run arbitrary code)" % name)
        try:
            if has_wo:
                obj = torch.load(path, map_location="cpu", weights_only=False)
            else:
                obj = torch.load(path, map_location="cpu")
        except Exception as e:
            raise ExportError("%s: cannot load: %s" % (name, _one_line(e)))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict) \
            and not any(torch.is_tensor(v) for v in obj.values()):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ExportError("%s: expected a state dict, got %s" % (name, type(obj).__name__))
    for k in obj:
        if not isinstance(k, str):
            raise ExportError("%s: non-string key %r" % (name, k))
    # non-tensor entries are reported later (as unexpected keys, or "is not a tensor")
    return dict(obj)


def _pickle_detail(e):
    """The offending global from torch's weights_only error, if it names one."""
    import re
    m = re.search(r"(Unsupported (?:global|operand|class)[^\n]*?)(?:\.? *(?:Please|Check|$|\n))",
                  str(e), re.S)
    return " (%s)" % m.group(1).strip()[:120] if m else ""


def load_weights(folder, trust_pickle=False):
    """Returns (state_dict of torch tensors, description of the source)."""
    st = os.path.join(folder, "model.safetensors")
    st_index = os.path.join(folder, "model.safetensors.index.json")
    pt = os.path.join(folder, "pytorch_model.bin")
    pt_index = os.path.join(folder, "pytorch_model.bin.index.json")
    if os.path.isfile(st):
        return _load_safetensors(st), "model.safetensors"
    if os.path.isfile(st_index):
        return _load_sharded(folder, st_index, _load_safetensors), "model.safetensors (sharded)"
    if os.path.isfile(pt):
        return _load_bin(pt, trust_pickle), "pytorch_model.bin"
    if os.path.isfile(pt_index):
        return (_load_sharded(folder, pt_index, lambda p: _load_bin(p, trust_pickle)),
                "pytorch_model.bin (sharded)")
    raise ExportError("%s has no model.safetensors or pytorch_model.bin" % folder)


def _load_sharded(folder, index_path, loader):
    iname = os.path.basename(index_path)
    try:
        with open(index_path, "rb") as f:
            index = json.loads(f.read().decode("utf-8"))
        wmap = index["weight_map"]
        if not isinstance(wmap, dict):
            raise ValueError("weight_map is not an object")
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError("%s is not a valid index: %s" % (iname, _one_line(e)))
    files = sorted(set(wmap.values()), key=str)
    sd = {}
    for fn in files:
        part = loader(_safe_member(folder, fn, iname))
        for k, v in part.items():
            if wmap.get(k) == fn:
                sd[k] = v
    missing = [k for k in wmap if k not in sd]
    if missing:
        raise ExportError("%s: tensors missing from their shard: %s" % (iname, _fmt_list(missing)))
    return sd


def _fmt_list(keys, n=8):
    keys = list(keys)
    s = ", ".join(keys[:n])
    if len(keys) > n:
        s += ", ... (%d in all)" % len(keys)
    return s


def expected_shapes(cfg, layout):
    """Expected HF key -> shape for a layout in ('v4', 'v5', 'nobias'); num_labels 0: no head."""
    import videomae_model
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    c, t, p = cfg["num_channels"], cfg["tubelet_size"], cfg["patch_size"]
    n = cfg["num_labels"]
    e = {
        "videomae.embeddings.patch_embeddings.projection.weight": (h, c, t, p, p),
        "videomae.embeddings.patch_embeddings.projection.bias": (h,),
    }
    if n:
        e["classifier.weight"] = (n, h)
        e["classifier.bias"] = (n,)
    norm = videomae_model.final_norm_prefix(cfg)
    if norm:
        e[norm + "weight"] = (h,)
        e[norm + "bias"] = (h,)
    for i in range(cfg["num_hidden_layers"]):
        pre = "videomae.encoder.layer.%d." % i
        a = pre + "attention.attention."
        for q in ("query", "key", "value"):
            e[a + q + ".weight"] = (h, h)
        if layout == "v4":
            e[a + "q_bias"] = (h,)
            e[a + "v_bias"] = (h,)
        elif layout == "v5":
            for q in ("query", "key", "value"):
                e[a + q + ".bias"] = (h,)
        e[pre + "attention.output.dense.weight"] = (h, h)
        e[pre + "attention.output.dense.bias"] = (h,)
        for ln in ("layernorm_before", "layernorm_after"):
            e[pre + ln + ".weight"] = (h,)
            e[pre + ln + ".bias"] = (h,)
        e[pre + "intermediate.dense.weight"] = (inter, h)
        e[pre + "intermediate.dense.bias"] = (inter,)
        e[pre + "output.dense.weight"] = (h, inter)
        e[pre + "output.dense.bias"] = (h,)
    return e


def canonical_state_dict(sd, cfg):
    """Check keys/shapes and return (float32 state dict in the v5 layout, layout name, ignored keys).

    cfg must already contain num_labels.
    """
    import torch
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    sd = with_base_prefix(sd)
    has_v4 = any(k.endswith(".attention.attention.q_bias") or k.endswith(".attention.attention.v_bias")
                 for k in sd)
    has_v5 = any(k.endswith(".attention.attention.query.bias") or
                 k.endswith(".attention.attention.value.bias") for k in sd)
    if has_v4 and has_v5:
        raise ExportError("weights mix the transformers 4.x (q_bias/v_bias) and 5.x (query.bias) "
                          "attention layouts")
    if not cfg["qkv_bias"]:
        layout = "nobias"
    else:
        layout = "v4" if has_v4 or not has_v5 else "v5"
    exp = expected_shapes(cfg, layout)
    ignored = sorted(k for k in sd if k not in exp and k.startswith(IGNORED_PREFIXES))
    unexpected = sorted(k for k in sd if k not in exp and k not in ignored)
    missing = sorted(k for k in exp if k not in sd)
    problems = []
    if missing:
        hint = ""
        if not cfg["num_labels"] and any(k.startswith("videomae.layernorm.") for k in missing):
            hint = (" (config.json says use_mean_pooling false, so transformers' VideoMAEModel "
                    "applies a final layernorm, but the weights have none)")
        problems.append("missing keys: %s%s" % (_fmt_list(missing), hint))
    if unexpected:
        hint = ""
        if not cfg["qkv_bias"] and (has_v4 or has_v5):
            hint = " (config.json says qkv_bias false but the weights have q/k/v biases)"
        problems.append("unexpected keys: %s%s" % (_fmt_list(unexpected), hint))
    wrong = []
    for k, shape in exp.items():
        v = sd.get(k)
        if v is None:
            continue
        if not torch.is_tensor(v):
            wrong.append("%s is not a tensor" % k)
        elif not v.is_floating_point():
            wrong.append("%s has dtype %s, expected floating point" % (k, v.dtype))
        elif tuple(v.shape) != shape:
            wrong.append("%s has shape %s, expected %s" % (k, list(v.shape), list(shape)))
    if wrong:
        problems.append("wrong tensors: %s" % _fmt_list(wrong, 6))
    if problems:
        raise ExportError("checkpoint does not match config.json: " + "; ".join(problems))

    out = {}
    for k in exp:
        v = sd[k].detach().to(torch.float32).contiguous()
        if not torch.isfinite(v).all():
            raise ExportError("weight %s contains NaN or infinity" % k)
        out[k] = v
    if layout == "v4":
        for i in range(cfg["num_hidden_layers"]):
            a = "videomae.encoder.layer.%d.attention.attention." % i
            out[a + "query.bias"] = out.pop(a + "q_bias")
            out[a + "value.bias"] = out.pop(a + "v_bias")
            out[a + "key.bias"] = torch.zeros_like(out[a + "value.bias"])
    return out, layout, ignored


# Base-model keys as VideoMAEModel saves them (transformers adds the "videomae." prefix when
# loading them into a model with a head).
BASE_KEYS = ("embeddings.", "encoder.", "layernorm.")


def with_base_prefix(sd):
    """A VideoMAEModel state dict (embeddings.*, encoder.*, layernorm.*) under "videomae."."""
    if any(k.startswith("videomae.") for k in sd):
        return sd
    return {("videomae." + k if k.startswith(BASE_KEYS) else k): v for k, v in sd.items()}


def num_labels_from(sd, raw_cfg=None):
    """The classifier's output count; 0 for a checkpoint without a head (encoder only)."""
    for k in ("classifier.weight", "module.classifier.weight"):
        v = sd.get(k)
        if v is not None and hasattr(v, "shape") and len(v.shape) == 2:
            return int(v.shape[0])
    if any(k.endswith("classifier.bias") for k in sd):
        raise ExportError("checkpoint has classifier.bias but no classifier.weight")
    archs = raw_cfg.get("architectures") if isinstance(raw_cfg, dict) else None
    if isinstance(archs, list) and "VideoMAEForVideoClassification" in archs:
        raise ExportError("config.json names VideoMAEForVideoClassification but the weights have no "
                          "classifier (classifier.weight is missing)")
    return 0


# ---------------------------------------------------------------------------------------------
# Verification

def _ref_forward_internal(cfg, sd, x):
    """Plain float64 eager forward (fallback oracle): (logits or None, embedding)."""
    import torch
    sd = {k: v.double() for k, v in sd.items()}
    x = x.double().permute(0, 2, 1, 3, 4)
    e = torch.nn.functional.conv3d(
        x, sd["videomae.embeddings.patch_embeddings.projection.weight"],
        sd["videomae.embeddings.patch_embeddings.projection.bias"],
        stride=(cfg["tubelet_size"], cfg["patch_size"], cfg["patch_size"]))
    h = e.flatten(2).transpose(1, 2)
    import videomae_model
    pos = videomae_model.sinusoid_table(h.shape[1], h.shape[2]).double()
    h = h + pos
    b, n, c = h.shape
    nh = cfg["num_attention_heads"]
    d = c // nh
    eps = cfg["layer_norm_eps"]
    ln = torch.nn.functional.layer_norm
    for i in range(cfg["num_hidden_layers"]):
        p = "videomae.encoder.layer.%d." % i
        a = p + "attention.attention."
        y = ln(h, (c,), sd[p + "layernorm_before.weight"], sd[p + "layernorm_before.bias"], eps)

        def proj(name):
            bias = sd.get(a + name + ".bias")
            t = y @ sd[a + name + ".weight"].t()
            if bias is not None:
                t = t + bias
            return t.view(b, n, nh, d).transpose(1, 2)
        q, k, v = proj("query"), proj("key"), proj("value")
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, n, c)
        h = h + o @ sd[p + "attention.output.dense.weight"].t() + sd[p + "attention.output.dense.bias"]
        y = ln(h, (c,), sd[p + "layernorm_after.weight"], sd[p + "layernorm_after.bias"], eps)
        y = torch.nn.functional.gelu(y @ sd[p + "intermediate.dense.weight"].t()
                                     + sd[p + "intermediate.dense.bias"])
        h = h + y @ sd[p + "output.dense.weight"].t() + sd[p + "output.dense.bias"]
    if not cfg["use_mean_pooling"]:
        h = ln(h, (c,), sd["videomae.layernorm.weight"], sd["videomae.layernorm.bias"], eps)
    if not cfg["num_labels"]:
        return None, h.mean(1)
    if cfg["use_mean_pooling"]:
        z = ln(h.mean(1), (c,), sd["fc_norm.weight"], sd["fc_norm.bias"], 1e-5)
    else:
        z = h[:, 0]
    return z @ sd["classifier.weight"].t() + sd["classifier.bias"], z


def _transformers_outputs(raw_cfg, cfg, sd_v5, x):
    """(logits or None, embedding) from the real transformers model, weights copied in explicitly
    (its own from_pretrained would zero a 4.x checkpoint's q/v biases under transformers 5.x)."""
    import torch
    import transformers
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel
    config = VideoMAEConfig.from_dict(dict(raw_cfg))
    head = cfg["num_labels"] > 0
    if head:
        config.num_labels = cfg["num_labels"]
    model = (VideoMAEForVideoClassification if head else VideoMAEModel)(config).eval()
    own = model.state_dict()
    has_qbias = any(k.endswith("attention.attention.q_bias") for k in own)
    target = {}
    for k, v in sd_v5.items():
        a = k.split("attention.attention.")
        if has_qbias and len(a) == 2 and a[1] in ("query.bias", "key.bias", "value.bias"):
            if a[1] == "key.bias":
                continue  # 4.x has an implicit zero key bias (a key bias cannot change softmax)
            k = a[0] + "attention.attention." + ("q_bias" if a[1] == "query.bias" else "v_bias")
        if not head:
            k = k[len("videomae."):]
        target[k] = v
    res = model.load_state_dict(target, strict=False)
    missing = [k for k in res.missing_keys if "position_embeddings" not in k]
    if missing or res.unexpected_keys:
        raise ExportError("verify: could not map the weights into transformers %s: missing %s, "
                          "unexpected %s" % (transformers.__version__, _fmt_list(missing),
                                             _fmt_list(res.unexpected_keys)), code=1)
    what = "transformers %s %s (float32)" % (transformers.__version__, type(model).__name__)
    with torch.no_grad():
        if not head:
            return None, model(pixel_values=x).last_hidden_state.mean(1), what
        seen = []
        hook = model.classifier.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        try:
            logits = model(pixel_values=x).logits
        finally:
            hook.remove()
        return logits, seen[0], what


def _reference_outputs(folder, cfg, sd_v5, x, trust_pickle):
    import torch
    tools = os.path.join(os.path.dirname(HERE), "test", "tools")
    try:
        if tools not in sys.path:
            sys.path.insert(0, tools)
        import reference  # test/tools/reference.py
    except ImportError:
        reference = None
    if reference is not None:
        model = reference.load_reference(folder, trust_pickle=trust_pickle)
        logits, emb = reference.forward_all(model, x.double().numpy())
        return (None if logits is None else torch.from_numpy(logits), torch.from_numpy(emb),
                "test/tools/reference.py (float64)")
    with torch.no_grad():
        logits, emb = _ref_forward_internal(cfg, sd_v5, x)
        return logits, emb, "internal eager forward (float64)"


def verify(path, folder, raw_cfg, cfg, sd_v5, extra_expected, trust_pickle=False):
    """Compares the written file with transformers (or a float64 reference) on a random input.
    Returns the largest absolute difference over the logits and the embedding."""
    import torch
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(2, cfg["num_frames"], cfg["num_channels"], cfg["image_size"], cfg["image_size"],
                    generator=gen)
    extra = {"videomae.json": "", "config.json": ""}
    m = jit_call(torch.jit.load, path, map_location="cpu", _extra_files=extra)
    if json.loads(extra["videomae.json"]) != json.loads(extra_expected):
        raise ExportError("verify: videomae.json read back differs from what was written", code=1)
    with torch.no_grad():
        got_logits, got_emb = m(x)
    try:
        import transformers  # noqa: F401
        have_tf = True
    except Exception:  # not installed, or broken
        have_tf = False
    if have_tf:
        want_logits, want_emb, what = _transformers_outputs(raw_cfg, cfg, sd_v5, x)
    else:
        log("verify: transformers is not installed; comparing with a float64 reference instead")
        want_logits, want_emb, what = _reference_outputs(folder, cfg, sd_v5, x, trust_pickle)
    pairs = [("embedding", got_emb, want_emb)]
    if cfg["num_labels"]:
        pairs.insert(0, ("logits", got_logits, want_logits))
    elif tuple(got_logits.shape) != (2, 0):
        raise ExportError("verify: an encoder-only model returned logits of shape %s"
                          % list(got_logits.shape), code=1)
    diffs = []
    for name, got, want in pairs:
        if tuple(got.shape) != tuple(want.shape):
            raise ExportError("verify: %s shape %s, reference %s"
                              % (name, list(got.shape), list(want.shape)), code=1)
        diffs.append((name, (got.double() - want.double()).abs().max().item()))
    diff = max(d for _, d in diffs)
    log("verify: max abs difference vs %s on a random [2,%d,%d,%d,%d] input: %.3g (%s)"
        % (what, cfg["num_frames"], cfg["num_channels"], cfg["image_size"], cfg["image_size"], diff,
           ", ".join("%s %.3g" % nd for nd in diffs)))
    if not diff <= VERIFY_TOLERANCE:
        raise ExportError("verify FAILED: max abs difference %.3g > %g (output removed)"
                          % (diff, VERIFY_TOLERANCE), code=1)
    return diff


# ---------------------------------------------------------------------------------------------

def export(args):
    import torch
    import videomae_model

    folder, hub_name = resolve_checkpoint(args.checkpoint)
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise ExportError("%s has no config.json" % folder)
    with open(cfg_path, "rb") as f:
        cfg_bytes = f.read()
    try:
        cfg_text = cfg_bytes.decode("utf-8")
        raw_cfg = json.loads(cfg_text)
    except ValueError as e:
        raise ExportError("config.json is not valid JSON: %s" % _one_line(e))
    cfg = read_config(raw_cfg)
    preprocessing, have_pp = read_preprocessing(folder, cfg["num_channels"], cfg["image_size"])

    sd, source = load_weights(folder, args.trust_pickle)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    cfg["num_labels"] = num_labels = num_labels_from(sd, raw_cfg)
    sd_v5, layout, ignored = canonical_state_dict(sd, cfg)
    del sd
    labels = labels_from_config(raw_cfg, num_labels) if num_labels else []

    model = videomae_model.build_from_hf(cfg, sd_v5)
    n_params = sum(p.numel() for p in model.parameters())
    scripted = jit_call(torch.jit.script, model)
    del model

    name = args.name
    if not name:
        name = hub_name or os.path.basename(os.path.normpath(os.path.abspath(folder)))
        nop = raw_cfg.get("_name_or_path")
        if (not name or name in (".", "/")) and isinstance(nop, str) and nop.strip("/"):
            name = nop.rstrip("/").split("/")[-1]
        name = name or "videomae"
    description = args.description
    if description is None:
        description = ("VideoMAE video classifier exported from %s" if num_labels else
                       "VideoMAE video encoder (embeddings only) exported from %s") % args.checkpoint
    meta = {
        "format": FORMAT,
        "name": name,
        "description": description,
        "torchVersion": torch.__version__,
        "architecture": "VideoMAEForVideoClassification" if num_labels else "VideoMAEModel",
        "outputs": ["logits", "embedding"],
        "config": {
            "numFrames": cfg["num_frames"], "imageSize": cfg["image_size"],
            "patchSize": cfg["patch_size"], "tubeletSize": cfg["tubelet_size"],
            "numChannels": cfg["num_channels"], "hiddenSize": cfg["hidden_size"],
            "numLayers": cfg["num_hidden_layers"], "numHeads": cfg["num_attention_heads"],
            "intermediateSize": cfg["intermediate_size"], "numLabels": cfg["num_labels"],
            "useMeanPooling": cfg["use_mean_pooling"], "qkvBias": cfg["qkv_bias"],
            "layerNormEps": cfg["layer_norm_eps"], "embeddingSize": cfg["hidden_size"],
            "embeddingPooling": videomae_model.pooling_mode(num_labels > 0, cfg["use_mean_pooling"]),
        },
        "labels": labels,
        "preprocessing": preprocessing,
    }
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False)

    out = os.path.abspath(args.output)
    out_dir = os.path.dirname(out)
    if not os.path.isdir(out_dir):
        raise ExportError("output folder %s does not exist" % out_dir)
    # save under the final file name (TorchScript names the archive's root folder after it)
    # in a private temporary folder, then move it into place atomically
    tmp_dir = tempfile.mkdtemp(prefix=".videomae-export-", dir=out_dir)
    tmp = os.path.join(tmp_dir, os.path.basename(out))
    try:
        jit_call(torch.jit.save, scripted, tmp, _extra_files={"videomae.json": meta_text,
                                                              "config.json": cfg_text})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.rmdir(tmp_dir)

    c = meta["config"]
    log("checkpoint: %s (%s, %s layout%s)" % (
        folder, source, {"v4": "transformers 4.x q_bias/v_bias", "v5": "transformers 5.x qkv bias",
                         "nobias": "no qkv bias"}[layout],
        ", ignored %d unused keys" % len(ignored) if ignored else ""))
    log("config: %d frames x %dx%d x %d ch, patch %d, tubelet %d, hidden %d, %d layers, %d heads, "
        "MLP %d, %s, eps %g" % (
            c["numFrames"], c["imageSize"], c["imageSize"], c["numChannels"], c["patchSize"],
            c["tubeletSize"], c["hiddenSize"], c["numLayers"], c["numHeads"], c["intermediateSize"],
            "%d labels" % c["numLabels"] if num_labels else "no classification head",
            c["layerNormEps"]))
    log("outputs: %slogits [B, %d] and embedding [B, %d] (%s)" % (
        "" if num_labels else "encoder only (VideoMAEModel): ", c["numLabels"], c["embeddingSize"],
        c["embeddingPooling"]))
    log("preprocessing: %s (shortest edge %d, crop %d)" % (
        "preprocessor_config.json" if have_pp else "defaults (no preprocessor_config.json)",
        preprocessing["shortestEdge"], preprocessing["cropSize"]))
    log("parameters: %s" % format(n_params, ","))
    log("wrote %s (%.1f MB), name %r, torch %s" % (out, os.path.getsize(out) / 1e6, name,
                                                  torch.__version__))
    if args.verify:
        try:
            verify(out, folder, raw_cfg, cfg, sd_v5, meta_text, args.trust_pickle)
        except BaseException:
            os.unlink(out)  # never leave a file behind that failed verification
            raise
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Export a Hugging Face VideoMAE checkpoint (video classification, or an "
                    "encoder without a head for embeddings) to a videomae-node TorchScript model "
                    "file (see docs/MODEL-FORMAT.md).")
    ap.add_argument("--checkpoint", required=True,
                    help="checkpoint folder (config.json + model.safetensors or pytorch_model.bin), "
                         "or a hub id when huggingface_hub is installed")
    ap.add_argument("--output", required=True, help="output .pt file")
    ap.add_argument("--name", help="model name stored in the file (default: the folder name)")
    ap.add_argument("--description", help="free-text description stored in the file")
    ap.add_argument("--verify", action="store_true",
                    help="compare the exported model with transformers (or a float64 reference)")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow pytorch_model.bin pickles that need to run code (UNSAFE)")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        import torch
    except ImportError:
        print("error: PyTorch is not installed for %s" % sys.executable, file=sys.stderr)
        return 2
    try:
        with torch.no_grad():
            rc = export(args)
    except ExportError as e:
        print("error: %s" % e, file=sys.stderr)
        return e.code
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as e:  # unexpected: still one line
        print("error: %s: %s" % (type(e).__name__, _one_line(e)), file=sys.stderr)
        return 1
    log("done in %.1f s" % (time.time() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
