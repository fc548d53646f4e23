#!/usr/bin/env python3
"""Turn a videomae-node/2 model file into a videomae-node/1 one, as exports made before embeddings
were: forward returns the logits only, and videomae.json has no "outputs", "architecture",
config.embeddingSize or config.embeddingPooling.

    python3 test/tools/make_v1_model.py --model new.pt --output old.pt
"""

import argparse
import json
import sys

import torch


class LogitsOnly(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.inner(pixel_values)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args(argv)
    extra = {"videomae.json": "", "config.json": ""}
    inner = torch.jit.load(a.model, map_location="cpu", _extra_files=extra)
    meta = json.loads(extra["videomae.json"])
    if meta.get("format") != "videomae-node/2":
        raise SystemExit("%s is not a videomae-node/2 file" % a.model)
    meta["format"] = "videomae-node/1"
    for k in ("outputs", "architecture"):
        meta.pop(k, None)
    for k in ("embeddingSize", "embeddingPooling"):
        meta["config"].pop(k, None)
    module = torch.jit.script(LogitsOnly(inner).eval())
    torch.jit.save(module, a.output, _extra_files={"videomae.json": json.dumps(meta, indent=2),
                                                   "config.json": extra["config.json"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
