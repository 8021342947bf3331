"""One study run in this process: ``python -m spikeforge.study.worker SPEC.json OUT WORK`` (started by
:func:`spikeforge.study.execute.run_study`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .execute import THREADS_ENV, run_one
from .plan import StudyRun


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m spikeforge.study.worker SPEC.json OUT_DIR WORK_DIR", file=sys.stderr)
        return 2
    spec_path, out, work = argv
    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    spec = json.loads(Path(spec_path).read_text())
    run = StudyRun(spec["part"], spec["method"], spec["T"], spec["seed"], spec["quick"], spec["recipe"])
    run_one(run, Path(out), Path(work), verbose=bool(spec.get("verbose")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
