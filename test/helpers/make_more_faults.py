"""More misbehaving model files for test/faults.test.js, beyond test/tools/make_fault_model.py.

Every TorchScript file carries videomae.json for a 4-frame 32x32 model with 5 labels (like the
files of make_fault_model.py), so it loads and warms up on zeros unless said otherwise:

  tuple.pt      forward returns a 3-tuple of tensors               -> load fails (warm-up)
  rank1.pt      forward returns 1-D logits                         -> load fails (warm-up)
  rank4in.pt    forward only accepts 4-D input                     -> load fails (warm-up)
  index.pt      indexes out of range when the input holds a value > 100   -> VMAE_RUNTIME
  assert.pt     a TorchScript assert fails when the input holds a value > 100 -> VMAE_RUNTIME
  batchonly.pt  raises whenever the batch has more than one clip   -> batch isolation
  notjson.pt    videomae.json is not JSON                          -> load fails
  statedict.pt  torch.save() of a state dict: a zip, not TorchScript -> load fails
  pickled.pt    statedict.pt with a videomae.json added to the zip -> load fails
  newer.pt      pickled.pt claiming torchVersion 99.1.0 -> load fails with the newer-torch hint

Usage: /usr/bin/python3 test/helpers/make_more_faults.py --out DIR
"""
import argparse
import json
import os
import shutil
import zipfile

import sys

import torch

# The same metadata as the basic fault models: one definition of the fixture's geometry.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from make_fault_model import metadata  # noqa: E402


class Base(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 5)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=[1, 3, 4]))


class Plain(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


class Tuple(Base):
    def forward(self, x: torch.Tensor):
        y = self.logits(x)
        return y, y, y


class Rank1(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).flatten()


class Rank4In(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise RuntimeError("fault model: expected a 4-D input")
        return self.head(x.mean(dim=[2, 3]))


class Index(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.max() > 100.0):
            return x[0, 1000]
        return self.logits(x)


class Assert(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert bool(x.max() <= 100.0), "fault model: assertion failed"
        return self.logits(x)


class BatchOnly(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(0) > 1 and bool(x.max() > 100.0):
            raise RuntimeError("fault model: a clip in this batch is bad")
        return self.logits(x)


def save(module, path, extra):
    torch.jit.save(torch.jit.script(module.eval()), path, _extra_files=extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    meta = {"videomae.json": json.dumps(metadata())}
    save(Tuple(), os.path.join(out, "tuple.pt"), meta)
    save(Rank1(), os.path.join(out, "rank1.pt"), meta)
    save(Rank4In(), os.path.join(out, "rank4in.pt"), meta)
    save(Index(), os.path.join(out, "index.pt"), meta)
    save(Assert(), os.path.join(out, "assert.pt"), meta)
    save(BatchOnly(), os.path.join(out, "batchonly.pt"), meta)
    save(Plain(), os.path.join(out, "notjson.pt"), {"videomae.json": "{not json"})
    torch.save(Plain().state_dict(), os.path.join(out, "statedict.pt"))
    shutil.copy(os.path.join(out, "statedict.pt"), os.path.join(out, "pickled.pt"))
    with zipfile.ZipFile(os.path.join(out, "pickled.pt"), "a") as z:
        prefix = z.namelist()[0].split("/")[0]
        z.writestr(prefix + "/extra/videomae.json", json.dumps(metadata()))
    # The same unloadable file, claiming a torch newer than any libtorch here.
    shutil.copy(os.path.join(out, "statedict.pt"), os.path.join(out, "newer.pt"))
    with zipfile.ZipFile(os.path.join(out, "newer.pt"), "a") as z:
        prefix = z.namelist()[0].split("/")[0]
        z.writestr(prefix + "/extra/videomae.json", json.dumps({**metadata(), "torchVersion": "99.1.0+cu999"}))


if __name__ == "__main__":
    main()
