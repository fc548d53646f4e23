#!/usr/bin/env python3
"""Export a videomae-node model file (.pt, TorchScript) to ONNX, for the benchmark's
onnxruntime-node comparison.

    python3 scripts/export_onnx.py --model model.pt --output model.onnx [--opset 14] [--check]

The ONNX graph is produced from the very module in the .pt (torch.onnx.export on the loaded
ScriptModule), so both runtimes run the same weights and the same fused-qkv / folded-scale
attention. Input ``pixel_values`` [batch, T, C, S, S] float32 (dynamic batch), outputs ``logits``
[batch, labels] and, for videomae-node/2 files, ``embedding`` [batch, hidden]. --check runs both on one random clip with onnxruntime (when the Python package
is installed) and prints the largest logit difference.

Exit status: 0 ok, 2 bad input, 1 unexpected error.
"""

import argparse
import json
import os
import sys
import warnings
import zipfile


def read_config(path):
    """The model geometry from the .pt's extra/videomae.json (docs/MODEL-FORMAT.md)."""
    with zipfile.ZipFile(path) as z:
        name = next((n for n in z.namelist() if n.endswith("extra/videomae.json")), None)
        if name is None:
            raise ValueError("%s has no extra/videomae.json: not a videomae-node model file" % path)
        meta = json.loads(z.read(name).decode("utf-8"))
    cfg = meta.get("config", meta)
    return {k: int(cfg[k]) for k in ("numFrames", "numChannels", "imageSize")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="videomae-node .pt file")
    ap.add_argument("--output", required=True, help="output .onnx file")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--check", action="store_true", help="compare with onnxruntime (Python) if present")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.model):
        print("error: no such file: %s" % a.model, file=sys.stderr)
        return 2
    try:
        geo = read_config(a.model)
    except (ValueError, KeyError, zipfile.BadZipFile) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2

    import torch
    module = torch.jit.load(a.model, map_location="cpu").eval()
    x = torch.randn(1, geo["numFrames"], geo["numChannels"], geo["imageSize"], geo["imageSize"])
    with torch.no_grad():
        want = module(x)
    # videomae-node/2 files return (logits, embedding); /1 files the logits alone
    names = ["logits", "embedding"] if isinstance(want, tuple) else ["logits"]
    want = want[0] if isinstance(want, tuple) else want
    tmp = a.output + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no signature found for ScriptMethod": expected
        # torch >= 2.5 defaults to the dynamo exporter (which needs onnxscript and cannot take a
        # ScriptModule); the TorchScript exporter is the one for a .pt.
        legacy = {"dynamo": False} if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 5) else {}
        with torch.no_grad():
            torch.onnx.export(module, (x,), tmp, input_names=["pixel_values"], output_names=names,
                              dynamic_axes=dict({"pixel_values": {0: "batch"}}, **{n: {0: "batch"} for n in names}),
                              opset_version=a.opset, do_constant_folding=True, **legacy)
    os.replace(tmp, a.output)
    print("wrote %s (%.1f MB, opset %d)" % (a.output, os.path.getsize(a.output) / 1e6, a.opset))
    if a.check:
        try:
            import onnxruntime as ort
        except ImportError:
            print("--check: the onnxruntime Python package is absent; skipped")
            return 0
        sess = ort.InferenceSession(a.output, providers=["CPUExecutionProvider"])
        got = sess.run(["logits"], {"pixel_values": x.numpy()})[0]
        print("--check: max |onnxruntime - torch| = %.3g" % abs(got - want.numpy()).max())
    return 0


if __name__ == "__main__":
    sys.exit(main())
