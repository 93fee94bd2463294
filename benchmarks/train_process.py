"""Whole-process time of `eegtune train` vs a lab-style script, startup and data included.

Both train EEGNet for the same number of epochs on four lab-format npz files this script
generates (real shapes and dtypes, a few NaNs); each command runs ``--repeats`` times in
alternation and the fastest run of each is kept.

    python benchmarks/train_process.py [--epochs 8] [--repeats 2] [--amp]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eegtune.data.bciiiib import FILES
from eegtune.data.synthetic import make_raw_synthetic

HERE = Path(__file__).resolve().parent


def make_lab_files(folder: Path) -> None:
    for seed, name in enumerate(FILES):
        signal, label = make_raw_synthetic(540, seed=seed, nan_fraction=1e-4)
        with (folder / name).open("wb") as fh:
            np.savez(fh, signal=signal, label=label)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="also time eegtune train --amp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_lab_files(Path(tmp))
        naive = [sys.executable, str(HERE / "naive_lab_train.py"), tmp, str(args.epochs)]
        ours = [
            sys.executable,
            "-m",
            "eegtune",
            "train",
            "--data-dir",
            tmp,
            "--offline",
            "--epochs",
            str(args.epochs),
            "--device",
            "cpu",
            "--test",
        ]
        commands = {"naive lab script": naive, "eegtune train": ours}
        if args.amp:
            commands["eegtune train --amp"] = [*ours, "--amp"]
        best = {name: float("inf") for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                best[name] = min(best[name], timed(cmd))
    print(f"# EEGNet, {args.epochs} epochs, whole process, best of {args.repeats}")
    for name, seconds in best.items():
        ratio = best["naive lab script"] / seconds
        print(f"{name:<22} {seconds:>7.2f} s {ratio:>6.2f}x")


if __name__ == "__main__":
    main()
