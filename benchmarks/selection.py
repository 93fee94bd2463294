"""Which objective and first Hyperband rung choose configurations that *test* best?

For each setting (objective x first rung) and each search seed, run a search on the synthetic
data, take the configuration it chooses, retrain it on the whole training set for its chosen
epoch count and measure test accuracy once. Report per setting: test accuracy of the chosen
configuration (mean and spread over search seeds), the validation-to-test gap (the winner's
curse), and the epochs the search spent. Defaults are chosen by test accuracy per epoch spent,
never by the best validation value.

    python benchmarks/selection.py [--seeds 3] [--trials 12] [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from eegtune.data.synthetic import make_synthetic
from eegtune.device import configure_process, resolve_device
from eegtune.models.networks import build_model
from eegtune.results.evaluate import chosen_epochs
from eegtune.search import samplers
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from eegtune.search.study import completed_trials
from eegtune.training import fit, predict, set_seed

FIRST_RUNGS = {
    "r=E//27": lambda epochs: max(1, epochs // 27),  # eegtune's first rung before this run
    "r>=3": lambda epochs: max(3, epochs // 9),  # slow starters get 3 epochs: the default
}


def chosen_test_accuracy(study: optuna.Study, data) -> tuple[float, float, int]:
    """(validation value, test accuracy, epochs) of the configuration the study chose."""
    best = completed_trials(study)[0]
    params, epochs = best.params, chosen_epochs(best)
    set_seed(0)
    model = build_model("eegnet", params["activation"], params["dropout"])
    fit(model, data.x_train, data.y_train, epochs=epochs, lr=params["lr"],
        batch_size=params["batch_size"], weight_decay=params["weight_decay"], seed=0)  # fmt: skip
    test = float((predict(model, data.x_test) == data.y_test).mean())
    return float(best.value or 0.0), test, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="search seeds per setting")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    configure_process(resolve_device("cpu"))
    data = make_synthetic(seed=0)
    print(f"# eegnet, synthetic, {args.trials} trials x up to {args.epochs} epochs, TPE, "
          f"Hyperband (factor 4), search seeds 0..{args.seeds - 1}")  # fmt: skip
    print(f"{'objective':<9} {'1st rung':<8} {'test % (mean ± sd)':>19} {'val %':>6} "
          f"{'gap':>5} {'epochs':>7} {'wall s':>7}")  # fmt: skip
    original = samplers._hyperband_min_epochs
    with tempfile.TemporaryDirectory() as tmp:
        for objective in ("best", "smoothed"):
            for rung_name, rung in FIRST_RUNGS.items():
                samplers._hyperband_min_epochs = rung  # benchmark-only override
                tests, vals, spent, t0 = [], [], [], time.perf_counter()
                for seed in range(args.seeds):
                    storage = str(
                        Path(tmp) / f"{objective}-{len(tests)}-{rung(args.epochs)}-{seed}.journal"
                    )
                    settings = plan_search(
                        model="eegnet", study_name="eegnet", trials=args.trials,
                        epochs=args.epochs, storage=storage,
                        dataset="synthetic", device="cpu", seed=seed, objective=objective,
                    )  # fmt: skip
                    run_search(settings, data_set=data)
                    study = optuna.load_study(study_name="eegnet", storage=open_storage(storage))
                    val, test, _ = chosen_test_accuracy(study, data)
                    vals.append(val)
                    tests.append(test)
                    spent.append(sum(len(t.intermediate_values) for t in study.trials))
                samplers._hyperband_min_epochs = original
                mean, sd = statistics.fmean(tests), statistics.pstdev(tests)
                gap = statistics.fmean(vals) - mean
                epochs = statistics.fmean(spent)
                print(f"{objective:<9} {rung_name:<8} {100 * mean:>12.2f} ± {100 * sd:4.2f} "
                      f"{100 * statistics.fmean(vals):>6.2f} {100 * gap:>5.2f} {epochs:>7.0f} "
                      f"{time.perf_counter() - t0:>7.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
