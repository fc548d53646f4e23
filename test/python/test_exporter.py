#!/usr/bin/env python3
"""Plain-python self-checks for the exporter and the Python test tools (tiny configs, < 60 s).

    /usr/bin/python3 test/python/test_exporter.py [-v] [CHECK...]

Exit status 0 when every check passes, 1 otherwise (each failure is printed). Needs torch and
numpy; transformers/safetensors are not needed. Runs under torch 1.13 and 2.x alike.
"""

import contextlib
import zlib
import io
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for sub in ("scripts", os.path.join("test", "tools")):
    p = os.path.join(ROOT, sub)
    if p not in sys.path:
        sys.path.insert(0, p)

import export_videomae  # noqa: E402
import make_checkpoint  # noqa: E402
import pil_preprocess  # noqa: E402
import reference  # noqa: E402
import safetensors_lite  # noqa: E402
import videomae_model  # noqa: E402

EXPORTER = os.path.join(ROOT, "scripts", "export_videomae.py")
VERBOSE = "-v" in sys.argv
TOL = 1e-4
TMP = tempfile.mkdtemp(prefix="videomae-pytest-")
RESULTS = []


def log(*a):
    print(*a, flush=True)


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def run_check(fn):
    t0 = time.time()
    try:
        fn()
        RESULTS.append((fn.__name__, None))
        log("ok   %-40s %.1fs" % (fn.__name__, time.time() - t0))
    except Exception as e:  # noqa: BLE001
        RESULTS.append((fn.__name__, e))
        msg = str(e).strip().splitlines()
        log("FAIL %-40s %s" % (fn.__name__, msg[-1] if msg else type(e).__name__))
        if VERBOSE:
            traceback.print_exc()
    return fn


def make(name, *args):
    out = os.path.join(TMP, name)
    with contextlib.redirect_stdout(io.StringIO()):
        # weight std 0.2 (not HF's 0.02) so that attention is far from uniform and any mapping
        # mistake (q/v bias swap, eps, scale) moves the logits well above the tolerance
        make_checkpoint.main(["--out", out, "--seed", str(zlib.crc32(name.encode()) % 1000),
                              "--weight-std", "0.2"] + list(args))
    return out


def export_inproc(ckpt, out=None, *extra):
    """Run the exporter's main() in-process. Returns (rc, stdout, stderr, out_path)."""
    out = out or ckpt + ".pt"
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        rc = export_videomae.main(["--checkpoint", ckpt, "--output", out] + list(extra))
    if VERBOSE:
        log(so.getvalue() + se.getvalue())
    return rc, so.getvalue(), se.getvalue(), out


def export_cli(ckpt, out=None, *extra):
    out = out or ckpt + ".pt"
    r = subprocess.run([sys.executable, EXPORTER, "--checkpoint", ckpt, "--output", out] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    if VERBOSE:
        log(r.stdout + r.stderr)
    return r.returncode, r.stdout, r.stderr, out


def expect_ok(res):
    rc, so, se, out = res
    if rc != 0:
        raise AssertionError("exporter failed (rc %d): %s" % (rc, se.strip()))
    return out


def expect_fail(res, code, *needles):
    rc, so, se, out = res
    if rc != code:
        raise AssertionError("expected exit %d, got %d (stderr: %s)" % (code, rc, se.strip()))
    lines = [ln for ln in se.strip().splitlines() if not ln.startswith("warning:")]
    if len(lines) != 1 or not lines[0].startswith("error: "):
        raise AssertionError("expected one 'error:' line on stderr, got %r" % se)
    for n in needles:
        if n not in se:
            raise AssertionError("stderr lacks %r: %s" % (n, se.strip()))
    if os.path.exists(out):
        raise AssertionError("an output file was written despite the failure")
    return se


def compare_with_reference(pt_path, ckpt, batches=(1, 3)):
    m = jit_load(pt_path, map_location="cpu")
    ref_model = reference.load_reference(ckpt)
    cfg = ref_model["cfg"]
    worst = 0.0
    gen = torch.Generator().manual_seed(7)
    for b in batches:
        x = torch.randn(b, cfg["num_frames"], cfg["num_channels"], cfg["image_size"],
                        cfg["image_size"], generator=gen)
        with torch.no_grad():
            got, got_emb = m(x)
        want, want_emb = reference.forward_all(ref_model, x.numpy())
        if want is None:  # encoder only: no logits
            assert tuple(got.shape) == (b, 0), tuple(got.shape)
        else:
            assert tuple(got.shape) == want.shape, (tuple(got.shape), want.shape)
            worst = max(worst, float(np.abs(got.double().numpy() - want).max()))
        assert tuple(got_emb.shape) == want_emb.shape, (tuple(got_emb.shape), want_emb.shape)
        assert got.dtype == torch.float32 and got_emb.dtype == torch.float32
        worst = max(worst, float(np.abs(got_emb.double().numpy() - want_emb).max()))
    assert worst < TOL, "max abs diff %.3g >= %g" % (worst, TOL)
    return worst


def jit_load(*args, **kwargs):
    return export_videomae.jit_call(torch.jit.load, *args, **kwargs)


def read_meta(pt_path):
    extra = {"videomae.json": "", "config.json": ""}
    jit_load(pt_path, map_location="cpu", _extra_files=extra)
    return json.loads(extra["videomae.json"]), extra["config.json"]


DIFFS = {}


# ---------------------------------------------------------------------------------------------
# numerics

def _combo(name, *args, cli=False):
    ckpt = make(name, *args)
    out = expect_ok((export_cli if cli else export_inproc)(ckpt))
    DIFFS[name] = compare_with_reference(out, ckpt)
    return ckpt, out


@check
def v4_safetensors_cli_verify():
    ckpt = make("v4_st", "--layout", "v4", "--format", "safetensors", "--preprocessor")
    rc, so, se, out = export_cli(ckpt, None, "--verify", "--name", "tiny-test", "--description", "d")
    assert rc == 0, se
    assert "verify: max abs difference" in so, so
    DIFFS["v4_st"] = compare_with_reference(out, ckpt)
    meta, cfg_text = read_meta(out)
    assert meta["name"] == "tiny-test" and meta["description"] == "d"
    with open(os.path.join(ckpt, "config.json"), "rb") as f:
        raw = f.read()
    assert (cfg_text if isinstance(cfg_text, bytes) else cfg_text.encode()) == raw, "config.json not verbatim"
    pp = meta["preprocessing"]
    assert pp == {"shortestEdge": 32, "cropSize": 32, "rescaleFactor": 1 / 255,
                  "mean": [0.45] * 3, "std": [0.225] * 3}, pp


@check
def v4_bin():
    _combo("v4_bin", "--layout", "v4", "--format", "bin")


@check
def v5_safetensors():
    _combo("v5_st", "--layout", "v5", "--format", "safetensors")


@check
def v5_bin():
    _combo("v5_bin", "--layout", "v5", "--format", "bin")


@check
def no_qkv_bias():
    _combo("noqkv", "--no-qkv-bias")


@check
def no_mean_pooling():
    _combo("nomean", "--no-mean-pooling", "--layout", "v5", "--layer-norm-eps", "1e-6")


@check
def encoder_only():
    # VideoMAEModel checkpoints (no "videomae." prefix, no head): embedding = last_hidden_state.mean(1)
    _, out = _combo("enc_v5_mean", "--encoder-only", "--layout", "v5")
    meta, _ = read_meta(out)
    assert meta["architecture"] == "VideoMAEModel" and meta["labels"] == [], meta
    assert meta["config"]["numLabels"] == 0 and meta["config"]["embeddingSize"] == 32
    assert meta["config"]["embeddingPooling"] == "mean", meta["config"]
    assert meta["description"].startswith("VideoMAE video encoder (embeddings only)")
    _, out = _combo("enc_v4_ln", "--encoder-only", "--layout", "v4", "--no-mean-pooling",
                    "--layer-norm-eps", "0.5")
    assert read_meta(out)[0]["config"]["embeddingPooling"] == "layernorm+mean"
    _combo("enc_nobias", "--encoder-only", "--no-qkv-bias", "--format", "bin")
    # VideoMAEForPreTraining-style: "videomae." keys plus a decoder, which is ignored
    src = make("pretrain_src", "--encoder-only", "--no-mean-pooling")
    sd = safetensors_lite.load_file(os.path.join(src, "model.safetensors"))
    sd = {"videomae." + k: v for k, v in sd.items()}
    sd["encoder_to_decoder.weight"] = np.zeros((16, 32), np.float32)
    sd["decoder.head.weight"] = np.zeros((4, 16), np.float32)
    sd["mask_token"] = np.zeros((1, 1, 16), np.float32)
    dst = os.path.join(TMP, "pretrain")
    os.makedirs(dst)
    safetensors_lite.save_file(sd, os.path.join(dst, "model.safetensors"))
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["architectures"] = ["VideoMAEForPreTraining"]
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    out = expect_ok(export_inproc(dst))
    DIFFS["pretraining keys"] = compare_with_reference(out, src)
    # use_mean_pooling false needs the final layernorm, which this checkpoint lacks
    sd.pop("videomae.layernorm.weight")
    sd.pop("videomae.layernorm.bias")
    safetensors_lite.save_file(sd, os.path.join(dst, "model.safetensors"))
    expect_fail(export_inproc(dst, dst + "-nonorm.pt"), 2, "videomae.layernorm.weight", "final layernorm")


@check
def torch2_deprecation_note():
    # torch >= 2.x warns that torch.jit is deprecated; the exporter says once what that means here
    ck = os.path.join(TMP, "v5_st")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="always")
    r = subprocess.run([sys.executable, EXPORTER, "--checkpoint", ck, "--output",
                        os.path.join(TMP, "dep.pt"), "--verify"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stdout.splitlines() if ln.startswith("note:")]
    assert "deprecat" not in r.stderr.lower(), r.stderr
    if int(torch.__version__.split(".")[0]) >= 2 and "deprecated" in _jit_warning_text():
        assert len(notes) == 1 and "torch::jit::load" in notes[0], r.stdout
    else:
        assert notes == [], r.stdout


def _jit_warning_text():
    """What this torch warns when scripting (empty on torch 1.13)."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.script(torch.nn.Identity())
    return " ".join(str(w.message) for w in caught)


@check
def large_layer_norm_eps():
    # eps 0.5 makes "fc_norm uses 1e-5, the blocks / final layernorm use the config eps" visible
    _combo("eps_mean", "--layer-norm-eps", "0.5")
    _combo("eps_nomean", "--layer-norm-eps", "0.5", "--no-mean-pooling", "--layout", "v5")


@check
def bf16_and_f16_checkpoints():
    _combo("bf16_st", "--dtype", "bfloat16")
    _combo("f16_st", "--dtype", "float16", "--layout", "v5")
    _combo("bf16_bin", "--dtype", "bfloat16", "--format", "bin")


@check
def odd_shapes():
    # 3 heads of 10 (1/sqrt(10) is inexact), 2 channels, non-square tokens grid 3x3, 6 frames / tubelet 3, 7 labels
    _combo("odd", "--hidden", "30", "--heads", "3", "--intermediate", "40", "--frames", "6",
           "--tubelet", "3", "--image-size", "24", "--patch", "8", "--labels", "7",
           "--channels", "2", "--layers", "3")


@check
def metadata_contract():
    out = os.path.join(TMP, "v5_st.pt")
    meta, _ = read_meta(out)
    assert meta["format"] == "videomae-node/2"
    assert meta["torchVersion"] == torch.__version__
    assert meta["architecture"] == "VideoMAEForVideoClassification"
    assert meta["outputs"] == ["logits", "embedding"]
    c = meta["config"]
    assert c == {"numFrames": 4, "imageSize": 32, "patchSize": 16, "tubeletSize": 2, "numChannels": 3,
                 "hiddenSize": 32, "numLayers": 2, "numHeads": 2, "intermediateSize": 64,
                 "numLabels": 5, "useMeanPooling": True, "qkvBias": True, "layerNormEps": 1e-12,
                 "embeddingSize": 32, "embeddingPooling": "mean+fc_norm"}, c
    assert meta["labels"] == ["class_%d" % i for i in range(5)], meta["labels"]
    assert meta["name"] == "v5_st", meta["name"]
    assert meta["description"].startswith("VideoMAE video classifier exported from ")
    # No preprocessor_config.json: Kinetics values, with the sizes following image_size (32 here).
    assert meta["preprocessing"] == {"shortestEdge": 32, "cropSize": 32, "rescaleFactor": 1 / 255,
                                     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    m = jit_load(out)
    names = dict(m.named_buffers())
    assert list(names) == ["pos_embed"], list(names)
    want = videomae_model.sinusoid_table(8, 32)
    assert torch.equal(names["pos_embed"], want)
    # the HF formula, scalar by scalar
    for pos, j in ((0, 0), (3, 5), (7, 31), (5, 30)):
        ang = pos / np.power(10000, 2 * (j // 2) / 32)
        v = np.float32(math.sin(ang) if j % 2 == 0 else math.cos(ang))
        assert abs(float(names["pos_embed"][0, pos, j]) - float(v)) <= 1e-7, (pos, j)
    assert all(not p.requires_grad for p in m.parameters())
    meta2, _ = read_meta(os.path.join(TMP, "nomean.pt"))
    assert meta2["config"]["useMeanPooling"] is False and meta2["config"]["layerNormEps"] == 1e-6
    assert meta2["config"]["embeddingPooling"] == "layernorm+token0"
    meta3, _ = read_meta(os.path.join(TMP, "noqkv.pt"))
    assert meta3["config"]["qkvBias"] is False


@check
def other_dtypes_and_batch():
    out = os.path.join(TMP, "v5_st.pt")
    ckpt = os.path.join(TMP, "v5_st")
    ref_model = reference.load_reference(ckpt)
    x = torch.randn(2, 4, 3, 32, 32)
    want = reference.forward(ref_model, x.numpy())
    m = jit_load(out).to(torch.bfloat16)
    with torch.no_grad():
        y = m(x.to(torch.bfloat16))[0]
    assert y.dtype == torch.bfloat16
    d = float(np.abs(y.double().numpy() - want).max())
    assert d < 0.05, d
    DIFFS["bf16 module on cpu"] = d
    m = jit_load(out).double()
    with torch.no_grad():
        y = m(x.double())[0]
    d = float(np.abs(y.numpy() - want).max())
    assert d < 1e-6, d
    DIFFS["float64 module on cpu"] = d
    try:
        m = jit_load(out).half()
        with torch.no_grad():
            m(x.half())
        DIFFS["f16 module on cpu"] = "runs"
    except RuntimeError as e:  # conv3d has no Half CPU kernel in torch 1.13
        DIFFS["f16 module on cpu"] = "unsupported on this torch: " + str(e).strip().splitlines()[-1][:80]
    if torch.cuda.is_available():
        for dt, tol in ((torch.float32, 1e-3), (torch.float16, 0.05), (torch.bfloat16, 0.1)):
            m = jit_load(out, map_location="cuda").to(dt)
            with torch.no_grad():
                y = m(x.cuda().to(dt))[0].double().cpu().numpy()
            d = float(np.abs(y - want).max())
            assert d < tol, (dt, d)
            DIFFS["cuda %s" % dt] = d
    # wrong input shape gives a clear error
    try:
        jit_load(out)(torch.randn(1, 4, 3, 32, 16))
        raise AssertionError("bad input shape accepted")
    except AssertionError:
        raise
    except Exception as e:  # torch.jit.Error
        assert "expected input [B, 4, 3, 32, 32]" in str(e), e


@check
def sharded_and_prefixed_checkpoints():
    src = os.path.join(TMP, "v5_st")
    sd = safetensors_lite.load_file(os.path.join(src, "model.safetensors"))
    keys = sorted(sd)
    dst = os.path.join(TMP, "sharded")
    os.makedirs(dst)
    shutil.copy(os.path.join(src, "config.json"), dst)
    wmap = {}
    for i, part in enumerate((keys[::2], keys[1::2])):
        fn = "model-%05d-of-00002.safetensors" % (i + 1)
        safetensors_lite.save_file({k: sd[k] for k in part}, os.path.join(dst, fn))
        wmap.update({k: fn for k in part})
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wmap}, f)
    out = expect_ok(export_inproc(dst))
    DIFFS["sharded"] = compare_with_reference(out, src)
    # module. prefix, plus harmless extras that must be ignored
    dst2 = os.path.join(TMP, "prefixed")
    os.makedirs(dst2)
    shutil.copy(os.path.join(src, "config.json"), dst2)
    sd2 = {"module." + k: v for k, v in sd.items()}
    sd2["module.videomae.embeddings.position_embeddings"] = np.zeros((1, 8, 32), np.float32)
    sd2["module.decoder.head.weight"] = np.zeros((4, 4), np.float32)
    safetensors_lite.save_file(sd2, os.path.join(dst2, "model.safetensors"))
    out = expect_ok(export_inproc(dst2))
    DIFFS["module. prefix + extras"] = compare_with_reference(out, src)


@check
def bin_preferred_safetensors():
    # both files present: safetensors wins (the bin here is garbage and must not be read)
    dst = os.path.join(TMP, "both")
    shutil.copytree(os.path.join(TMP, "v4_st"), dst)
    with open(os.path.join(dst, "pytorch_model.bin"), "wb") as f:
        f.write(b"not a pickle")
    expect_ok(export_inproc(dst))


@check
def verify_failure_and_fallback_oracle():
    ck = os.path.join(TMP, "v4_st")
    saved = export_videomae.VERIFY_TOLERANCE
    export_videomae.VERIFY_TOLERANCE = 0.0  # any float32 rounding now counts as a failure
    try:
        expect_fail(export_inproc(ck, os.path.join(TMP, "vf.pt"), "--verify"), 1, "verify FAILED")
    finally:
        export_videomae.VERIFY_TOLERANCE = saved
    # the exporter's internal float64 forward (used when test/tools is absent) agrees with reference.py
    with open(os.path.join(ck, "config.json")) as f:
        cfg = export_videomae.read_config(json.load(f))
    sd, _ = export_videomae.load_weights(ck)
    cfg["num_labels"] = export_videomae.num_labels_from(sd)
    sd5, layout, _ = export_videomae.canonical_state_dict(sd, cfg)
    assert layout == "v4"
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        a, ae = export_videomae._ref_forward_internal(cfg, sd5, x)
    b, be = reference.forward_all(reference.load_reference(ck), x.numpy())
    assert np.abs(a.numpy() - b).max() < 1e-12, np.abs(a.numpy() - b).max()
    assert np.abs(ae.numpy() - be).max() < 1e-12, np.abs(ae.numpy() - be).max()


# ---------------------------------------------------------------------------------------------
# bad input

def _write_st_raw(path, header, data=b"", hlen=None):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) if hlen is None else hlen))
        f.write(raw)
        f.write(data)


@check
def safetensors_defensive_parsing():
    d = os.path.join(TMP, "st")
    os.makedirs(d)
    ok = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    cases = {
        "short": (None, None, None),
        "hlen_too_big": (ok, b"\0" * 16, 1 << 62),
        "hlen_past_end": (ok, b"\0" * 16, 10000),
        "not_json": (b"{not json at all}  ", b"", None),
        "not_utf8": (b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", b"", None),
        "not_object": (b"[1,2,3] ", b"", None),
        "dup_key": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                    b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4, None),
        "offsets_out_of_range": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                                 b"\0" * 8, None),
        "offsets_reversed": ({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, b"\0" * 8, None),
        "negative_offset": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b"\0" * 8, None),
        "overlap": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, None),
        "unknown_dtype": ({"a": {"dtype": "F8_E9", "shape": [1], "data_offsets": [0, 1]}}, b"\0", None),
        "size_mismatch": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, None),
        "negative_dim": ({"a": {"dtype": "F32", "shape": [-2, -1], "data_offsets": [0, 8]}}, b"\0" * 8, None),
        "huge_shape": ({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}},
                       b"\0" * 8, None),
        "float_dim": ({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, b"\0" * 8, None),
        "bad_entry": ({"a": [1, 2, 3]}, b"", None),
        "bad_metadata": ({"__metadata__": [1]}, b"", None),
    }
    for name, (header, data, hlen) in cases.items():
        path = os.path.join(d, name + ".safetensors")
        if header is None:
            with open(path, "wb") as f:
                f.write(b"\1\2\3")
        else:
            _write_st_raw(path, header, data, hlen)
        try:
            safetensors_lite.load_file(path)
        except ValueError as e:
            if VERBOSE:
                log("  %s: %s" % (name, e))
            continue
        raise AssertionError("%s: corrupt file was accepted" % name)
    # round trip of every dtype, incl. bf16 widening, bool and zero-size tensors
    arrs = {"f64": np.arange(3, dtype=np.float64), "f16": np.array([1.5, -2], np.float16),
            "i64": np.array([-1, 2**40], np.int64), "i32": np.array([7], np.int32),
            "u8": np.array([0, 255], np.uint8), "b": np.array([True, False]),
            "empty": np.zeros((0, 3), np.float32)}
    p = os.path.join(d, "rt.safetensors")
    safetensors_lite.save_file(arrs, p)
    back = safetensors_lite.load_file(p)
    for k, v in arrs.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    bf = np.array([1.0, -2.5, 3.140625, 1e30], np.float32)
    safetensors_lite.write_streaming(p, [("x", "BF16", (4,))], lambda n: bf)
    got = safetensors_lite.load_file(p)["x"]
    assert got.dtype == np.float32 and np.allclose(got, bf, rtol=1e-2), got
    assert got[2] == np.float32(3.140625)
    # end to end: a corrupt model.safetensors gives exit 2 and one error line
    ck = os.path.join(TMP, "corrupt")
    os.makedirs(ck)
    shutil.copy(os.path.join(TMP, "v4_st", "config.json"), ck)
    _write_st_raw(os.path.join(ck, "model.safetensors"), ok, b"\0" * 16, 1 << 40)
    expect_fail(export_inproc(ck), 2, "invalid safetensors file", "header length")


class _Evil(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


@check
def malicious_pickle_refused():
    marker = os.path.join(TMP, "pwned-marker")
    for variant in ("zip", "legacy", "plain-pickle"):
        ck = os.path.join(TMP, "evil_" + variant)
        os.makedirs(ck)
        shutil.copy(os.path.join(TMP, "v4_bin", "config.json"), ck)
        path = os.path.join(ck, "pytorch_model.bin")
        payload = {"classifier.weight": torch.zeros(5, 32), "x": _Evil(marker)}
        if variant == "zip":
            torch.save(payload, path)
        elif variant == "legacy":
            torch.save(payload, path, _use_new_zipfile_serialization=False)
        else:
            with open(path, "wb") as f:
                pickle.dump(payload, f, protocol=2)
        assert not os.path.exists(marker)
        res = export_cli(ck) if variant == "zip" else export_inproc(ck)
        expect_fail(res, 2, "--trust-pickle", "refusing")
        assert not os.path.exists(marker), "the pickle payload ran (%s)" % variant
    # --trust-pickle: a bin with non-tensor bookkeeping is loaded (only the flag allows it)
    import argparse
    ck = os.path.join(TMP, "trusted")
    os.makedirs(ck)
    shutil.copy(os.path.join(TMP, "v4_bin", "config.json"), ck)
    sd = torch.load(os.path.join(TMP, "v4_bin", "pytorch_model.bin"), weights_only=True)
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1)}, os.path.join(ck, "pytorch_model.bin"))
    expect_fail(export_inproc(ck), 2, "--trust-pickle")
    out = expect_ok(export_inproc(ck, None, "--trust-pickle", "--verify"))
    compare_with_reference(out, os.path.join(TMP, "v4_bin"))


def _mutated(name, mutate_sd=None, mutate_cfg=None, src="v4_st"):
    base = os.path.join(TMP, src)
    dst = os.path.join(TMP, name)
    os.makedirs(dst)
    sd = safetensors_lite.load_file(os.path.join(base, "model.safetensors"))
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    if mutate_sd:
        mutate_sd(sd)
    if mutate_cfg:
        mutate_cfg(cfg)
    safetensors_lite.save_file(sd, os.path.join(dst, "model.safetensors"))
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dst


@check
def bad_checkpoints_rejected():
    a = "videomae.encoder.layer.1.attention.attention."
    expect_fail(export_inproc(_mutated("missing", lambda sd: sd.pop(a + "v_bias"))), 2,
                "missing keys", a + "v_bias")
    expect_fail(export_inproc(_mutated("unexpected", lambda sd: sd.update(foo=np.zeros(2, np.float32)))),
                2, "unexpected keys", "foo")
    expect_fail(export_inproc(_mutated("wrongshape", lambda sd: sd.update(
        {"fc_norm.weight": np.zeros(31, np.float32)}))), 2, "fc_norm.weight has shape [31]")
    expect_fail(export_inproc(_mutated("intweights", lambda sd: sd.update(
        {"fc_norm.weight": np.zeros(32, np.int32)}))), 2, "fc_norm.weight has dtype")
    expect_fail(export_inproc(_mutated("mixed", lambda sd: sd.update(
        {a + "query.bias": np.zeros(32, np.float32)}))), 2, "mix")
    expect_fail(export_inproc(_mutated("cfgmismatch", None, lambda c: c.update(hidden_size=64))), 2,
                "does not match config.json")
    expect_fail(export_inproc(_mutated("qkvfalse", None, lambda c: c.update(qkv_bias=False))), 2,
                "qkv_bias false")
    expect_fail(export_inproc(_mutated("relu", None, lambda c: c.update(hidden_act="relu"))), 2, "hidden_act")
    expect_fail(export_inproc(_mutated("heads", None, lambda c: c.update(num_attention_heads=3))), 2,
                "multiple of num_attention_heads")
    # config.json names the classification architecture: a missing head is an error, not an encoder
    expect_fail(export_inproc(_mutated("nohead", lambda sd: [sd.pop("classifier.weight"),
                                                             sd.pop("classifier.bias")])),
                2, "VideoMAEForVideoClassification", "classifier")
    expect_fail(export_inproc(_mutated("halfhead", lambda sd: sd.pop("classifier.weight"))), 2,
                "classifier.bias but no classifier.weight")
    expect_fail(export_inproc(_mutated("nan", lambda sd: sd["classifier.bias"].__setitem__(0, np.nan))),
                2, "NaN")
    expect_fail(export_inproc(os.path.join(TMP, "does-not-exist")), 2, "is not a folder")
    empty = os.path.join(TMP, "empty")
    os.makedirs(empty)
    expect_fail(export_inproc(empty), 2, "config.json")
    with open(os.path.join(empty, "config.json"), "w") as f:
        f.write("{oops")
    expect_fail(export_inproc(empty), 2, "not valid JSON")
    # CLI exit code for bad input
    expect_fail(export_cli(os.path.join(TMP, "does-not-exist")), 2, "is not a folder")


@check
def labels_and_preprocessing_fallbacks():
    def no_labels(c):
        c.pop("id2label")
        c.pop("label2id")
    ck = _mutated("nolabels", None, no_labels)
    with open(os.path.join(ck, "preprocessor_config.json"), "w") as f:
        json.dump({"size": 256, "crop_size": 224, "do_rescale": True, "rescale_factor": 0.5,
                   "do_normalize": False}, f)
    meta, _ = read_meta(expect_ok(export_inproc(ck)))
    assert meta["labels"] == ["LABEL_%d" % i for i in range(5)], meta["labels"]
    assert meta["preprocessing"] == {"shortestEdge": 256, "cropSize": 224, "rescaleFactor": 0.5,
                                     "mean": [0.0] * 3, "std": [1.0] * 3}, meta["preprocessing"]
    ck = _mutated("partlabels", None, lambda c: c.update(id2label={"0": "a", "2": "c"}))
    meta, _ = read_meta(expect_ok(export_inproc(ck)))
    assert meta["labels"] == ["a", "LABEL_1", "c", "LABEL_3", "LABEL_4"], meta["labels"]


@check
def defaults_when_config_keys_absent():
    # a config with only the non-default values (HF omits nothing, but be lenient)
    def minimal(c):
        for k in ("qkv_bias", "use_mean_pooling", "layer_norm_eps", "hidden_act", "num_channels"):
            c.pop(k)
    ck = _mutated("minimalcfg", None, minimal)
    out = expect_ok(export_inproc(ck))
    DIFFS["config defaults"] = compare_with_reference(out, ck)


# ---------------------------------------------------------------------------------------------
# PIL preprocessing reference

@check
def pil_preprocess_tool():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 30, 50, 3), dtype=np.uint8)
    out = pil_preprocess.preprocess(frames, 20, 16)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    from PIL import Image
    r = np.asarray(Image.fromarray(frames[1]).resize((33, 20), Image.BILINEAR))  # int(20*50/30)=33
    assert np.array_equal(out[1], r[2:18, 8:24])
    crops = pil_preprocess.preprocess(frames, 20, 16, crops=3)
    assert crops.shape == (3, 2, 16, 16, 3)
    assert np.array_equal(crops[0, 1], r[2:18, 0:16]) and np.array_equal(crops[2, 1], r[2:18, 17:33])
    tall = pil_preprocess.preprocess(frames.transpose(0, 2, 1, 3).copy(), 20, 16, crops=2)
    assert tall.shape == (2, 2, 16, 16, 3)
    n = pil_preprocess.normalize(out, 1 / 255, [0.5, 0.4, 0.3], [0.2, 0.3, 0.4])
    assert n.shape == (2, 3, 16, 16) and n.dtype == np.float32
    assert abs(n[1, 2, 3, 4] - np.float32((out[1, 3, 4, 2] / 255 - 0.3) / 0.4)) < 1e-6
    # CLI
    src = os.path.join(TMP, "frames.u8")
    frames.tofile(src)
    dst = os.path.join(TMP, "frames.out")
    subprocess.check_call([sys.executable, os.path.join(ROOT, "test", "tools", "pil_preprocess.py"),
                           "--input", src, "--shape", "2,30,50,3", "--shortest-edge", "20",
                           "--crop-size", "16", "--output", dst], stdout=subprocess.DEVNULL)
    assert np.array_equal(np.fromfile(dst, np.uint8).reshape(out.shape), out)


@check
def reference_cli():
    ck = os.path.join(TMP, "v5_bin")
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 32, 32)).astype("<f4")
    xi, lo = os.path.join(TMP, "x.f32"), os.path.join(TMP, "logits.f64")
    x.tofile(xi)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "test", "tools", "reference.py"),
                        "--checkpoint", ck, "--input", xi, "--shape", "2,4,3,32,32", "--output", lo,
                        "--json"], stdout=subprocess.PIPE, universal_newlines=True, check=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    got = np.fromfile(lo, "<f8").reshape(2, 5)
    js = np.array(json.loads(r.stdout)["logits"])
    assert np.array_equal(got, js)
    m = jit_load(ck + ".pt")
    with torch.no_grad():
        y, emb = m(torch.from_numpy(x))
    assert np.abs(y.double().numpy() - got).max() < TOL
    assert js.shape == (2, 5) and len(json.loads(r.stdout)["embedding"][0]) == 32


def main():
    torch.set_num_threads(1)
    t0 = time.time()
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    for fn in CHECKS:
        if not only or fn.__name__ in only:
            run_check(fn)
    failed = [n for n, e in RESULTS if e is not None]
    log("max abs diffs: " + ", ".join("%s %s" % (k, ("%.2g" % v) if isinstance(v, float) else v)
                                      for k, v in DIFFS.items()))
    log("%d checks, %d failed, %.1f s" % (len(RESULTS), len(failed), time.time() - t0))
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
