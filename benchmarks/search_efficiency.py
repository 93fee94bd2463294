"""Search efficiency of the pruners on synthetic data, at an equal trial budget.

For each pruner (and no pruning) one study runs the same seeded TPE search: the same number of
trials of EEGNet on the synthetic dataset, each up to ``--epochs`` epochs. It prints the total
epochs trained, the wall time and the best validation accuracy reached.

    python benchmarks/search_efficiency.py [--trials 20] [--epochs 30] [--model eegnet]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from eegtune.data.synthetic import make_synthetic
from eegtune.device import configure_process, resolve_device
from eegtune.names import PRUNERS
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--model", default="eegnet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS))
    args = parser.parse_args()
    data = make_synthetic(seed=0)
    configure_process(resolve_device("cpu"))  # as the CLI's entry point does
    print(
        f"# {args.model}, synthetic data, {args.trials} trials x up to {args.epochs} epochs, "
        f"TPE seed {args.seed}"
    )
    print(
        f"{'pruner':<10} {'epochs':>7} {'vs none':>8} {'wall s':>8} {'best val %':>11} "
        f"{'pruned':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in args.pruners:
            storage = str(Path(tmp) / f"{pruner}.journal")
            settings = plan_search(
                model=args.model,
                study_name=args.model,
                trials=args.trials,
                epochs=args.epochs,
                storage=storage,
                dataset="synthetic",
                device="cpu",
                pruner=pruner,
                seed=args.seed,
            )
            t0 = time.perf_counter()
            status = run_search(settings, data_set=data)
            wall = time.perf_counter() - t0
            study = optuna.load_study(study_name=args.model, storage=open_storage(storage))
            epochs = sum(len(t.intermediate_values) for t in study.trials)
            full = args.trials * args.epochs
            print(
                f"{pruner:<10} {epochs:>7} {full / epochs:>7.2f}x {wall:>8.0f} "
                f"{100 * status.best_value:>11.2f} {status.pruned:>7}",
                flush=True,
            )


if __name__ == "__main__":
    main()
