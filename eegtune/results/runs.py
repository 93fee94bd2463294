"""The run folder of ``eegtune train``: what one training run keeps, like Lightning's CSV logger.

``<runs-dir>/<network>-<activation>-<dataset>-<UTC time>/`` holds

- ``epochs.csv``: one row per epoch (train and validation loss and accuracy, seconds), rewritten
  after every epoch, so an interrupted run keeps the epochs it finished;
- ``summary.json``: the exact settings, seed, split, data source and fingerprint, device,
  versions and the outcome, written when the run ends (``"status": "interrupted"`` after
  Ctrl-C);
- ``weights.pt``: the final ``state_dict``, loadable into ``build_model(...)``.

Every file is written to a temporary name and moved into place: none is ever half-written.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import asdict, fields
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.files import atomic_write, atomic_write_text, check_writable, safe_name
from eegtune.training import EpochRecord

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["EPOCH_COLUMNS", "RunFolder"]

EPOCH_COLUMNS = tuple(f.name for f in fields(EpochRecord))  # epoch, losses, accuracies, seconds


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


class RunFolder:
    """A new, unique folder for one training run, and the files written into it."""

    def __init__(self, runs_dir: Path | str, name: str) -> None:
        check_writable(runs_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        base = Path(runs_dir) / safe_name(f"{name}-{stamp}")
        path, n = base, 1
        while True:
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")
        self.path = path
        self.records: list[EpochRecord] = []

    def add_epoch(self, record: EpochRecord) -> None:
        """Keep one epoch's metrics; ``epochs.csv`` holds every epoch so far."""
        self.records.append(record)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EPOCH_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in self.records)  # EpochRecord's fields, in order
        atomic_write_text(self.path / "epochs.csv", buffer.getvalue())

    def save_weights(self, model: nn.Module) -> None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_write(self.path / "weights.pt", partial(_save, state))

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``: ``summary`` plus the software versions and the epochs run."""
        document = {
            **summary,
            "epochs_run": len(self.records),
            "versions": {
                "eegtune": _installed("eegtune"),
                "torch": _installed("torch"),
                "numpy": _installed("numpy"),
                "python": platform.python_version(),
            },
            "files": {"epochs": "epochs.csv", "weights": "weights.pt"},
        }
        atomic_write_text(self.path / "summary.json", json.dumps(document, indent=2))


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    import torch

    torch.save(state, path)
