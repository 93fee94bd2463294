"""Beyond BCI IIIb: does the search find something above chance on K classes, and what does
loading cost?

1. A generated ``npz:`` folder, 3 classes x 8 channels x 500 samples at 125 Hz: each class
   adds a 10 Hz rhythm of random phase on its own channel over 1/f-like noise (learnable, not
   trivial). ``eegtune search`` then ``eegtune evaluate`` through the library, per search seed:
   test accuracy of the chosen configuration against the chance level, and epochs spent.
2. ``moabb:FakeDataset`` load time for 1 and 2 subjects (MOABB's paradigm path, offline).

    python benchmarks/datasets.py [--seeds 2] [--trials 8] [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from eegtune.data.loading import load_dataset
from eegtune.data.sources import parse_source
from eegtune.device import configure_process, resolve_device
from eegtune.results.evaluate import evaluate_study, plan_evaluation
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from eegtune.search.study import load_study


def write_rhythm_npz(folder: Path, n_train: int = 600, n_test: int = 300, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(500) / 125.0
    for name, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 3
        noise = np.cumsum(rng.standard_normal((n, 8, 500)), axis=2) * 0.02  # slow drift
        noise += rng.standard_normal((n, 8, 500))
        phase = rng.uniform(0, 2 * np.pi, n)
        for i in range(n):
            noise[i, y[i] * 2] += 0.4 * np.sin(2 * np.pi * 10 * t + phase[i])
        labels = np.array(["feet", "left_hand", "right_hand"])[y]
        np.savez(folder / f"{name}.npz", X=noise.astype(np.float32), y=labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="search seeds")
    parser.add_argument("--trials", type=int, default=8, help="trials per search")
    parser.add_argument("--epochs", type=int, default=20, help="max epochs per trial")
    args = parser.parse_args()
    configure_process(resolve_device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rhythm"
        write_rhythm_npz(folder)
        data = load_dataset(f"npz:{folder}")
        print(f"npz: {data.model_kwargs}, classes {data.classes}, chance {100 * data.chance:.1f}%")
        means, spent = [], []
        for seed in range(args.seeds):
            storage = str(Path(tmp) / f"s{seed}.db")
            settings = plan_search(
                model="eegnet",
                study_name="eegnet", trials=args.trials, epochs=args.epochs, storage=storage,
                dataset=data.name, device="cpu", seed=seed,
            )  # fmt: skip
            started = time.perf_counter()
            run_search(settings, data_set=data)
            opened = open_storage(storage)
            study = load_study(opened, "eegnet")
            epochs = sum(len(t.intermediate_values) for t in study.trials)
            plan = plan_evaluation(opened, "eegnet", seeds=3, models_dir=Path(tmp) / "m")
            (result,) = evaluate_study(plan, data, storage=opened)
            per_class = ", ".join(f"{k} {100 * v:.0f}%" for k, v in result.per_class.items())
            print(f"search seed {seed}: test {100 * result.mean:.1f}% +- {100 * result.std:.1f} "
                  f"(chance {100 * result.chance:.1f}%), per class {per_class}; "
                  f"{epochs} epochs searched, {time.perf_counter() - started:.0f} s")  # fmt: skip
            means.append(result.mean)
            spent.append(epochs)
        print(f"over {args.seeds} search seeds: test {100 * statistics.fmean(means):.1f}%, "
              f"epochs {statistics.fmean(spent):.0f}")  # fmt: skip
    for subjects in (["1"], ["1", "2"]):
        started = time.perf_counter()
        fake = load_dataset(parse_source("moabb:FakeDataset", subjects))
        print(f"moabb:FakeDataset subjects {subjects}: {len(fake.y_train)}+{len(fake.y_test)} "
              f"trials {fake.input_shape}, {time.perf_counter() - started:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
