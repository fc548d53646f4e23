"""Writes small TorchScript files that exercise the runtime's failure paths.

Each file carries videomae.json metadata for a 4-frame 32x32 model with 5 labels, so it loads and
warms up like a real export (warm-up feeds zeros), but misbehaves on purpose when the input holds
a value above 100:

  throws.pt     forward raises a RuntimeError                  -> VMAE_RUNTIME
  oom.pt        forward asks for a 16 TiB tensor                -> VMAE_OUT_OF_MEMORY
  nometa.pt     a plain scripted module, no videomae.json       -> VMAE_MODEL_LOAD_FAILED
  badlabels.pt  metadata lists 3 labels, the model outputs 5    -> VMAE_MODEL_LOAD_FAILED
  badmeta.pt    metadata is not valid (negative numFrames)      -> VMAE_MODEL_LOAD_FAILED

Usage: /usr/bin/python3 test/tools/make_fault_model.py --out DIR
"""
import argparse
import json
import os

import torch


class Fault(torch.nn.Module):
    def __init__(self, mode: int):
        super().__init__()
        self.mode = mode
        self.head = torch.nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.max() > 100.0):
            if self.mode == 1:
                raise RuntimeError("fault model: deliberate failure inside forward")
            if self.mode == 2:
                return x.new_empty([1 << 42])
        return self.head(x.mean(dim=[1, 3, 4]))


def metadata(labels=5, num_frames=4):
    return {
        "format": "videomae-node/1",
        "name": "fault-model",
        "description": "test fixture for failure paths",
        "torchVersion": torch.__version__,
        "config": {"numFrames": num_frames, "imageSize": 32, "patchSize": 16, "tubeletSize": 2,
                   "numChannels": 3, "hiddenSize": 8, "numLayers": 1, "numHeads": 1,
                   "numLabels": labels},
        "labels": ["l%d" % i for i in range(labels)],
        "preprocessing": {"shortestEdge": 32, "cropSize": 32, "rescaleFactor": 1 / 255,
                          "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }


def save(module, path, meta):
    extra = {} if meta is None else {"videomae.json": json.dumps(meta)}
    torch.jit.save(torch.jit.script(module.eval()), path, _extra_files=extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    save(Fault(1), os.path.join(out, "throws.pt"), metadata())
    save(Fault(2), os.path.join(out, "oom.pt"), metadata())
    save(Fault(0), os.path.join(out, "nometa.pt"), None)
    save(Fault(0), os.path.join(out, "badlabels.pt"), metadata(labels=3))
    save(Fault(0), os.path.join(out, "badmeta.pt"), metadata(num_frames=-4))


if __name__ == "__main__":
    main()
