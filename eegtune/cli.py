"""The ``eegtune`` command line. Commands are thin: parse, call the library, render.

Heavy libraries (torch, optuna, plotly, numpy) are imported inside the commands so that
``eegtune --help`` answers instantly.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from eegtune.console import (
    download_progress,
    epoch_progress,
    evaluation_table,
    headline_table,
    make_console,
    render_status,
    trials_table,
)
from eegtune.errors import EegtuneError

app = typer.Typer(
    name="eegtune",
    help="Find the best hyperparameters for EEGNet and DeepConvNet on BCI IIIb EEG with Optuna.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Get, verify and describe the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class DatasetName(StrEnum):
    bci_iiib = "bci-iiib"
    synthetic = "synthetic"


class ModelName(StrEnum):
    eegnet = "eegnet"
    deepconvnet = "deepconvnet"


class ActivationName(StrEnum):
    relu = "relu"
    leaky_relu = "leaky_relu"
    elu = "elu"


# Shared option declarations -------------------------------------------------------------------
DatasetOpt = Annotated[
    DatasetName,
    typer.Option("--dataset", help="Dataset: the real BCI IIIb files, or seeded synthetic trials."),
]
DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="Folder holding the four BCI IIIb .npz files.")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Never download missing data files (also set by EEGTUNE_OFFLINE=1).",
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="Training device: auto, cpu, cuda or cuda:N.")
]
ValFractionOpt = Annotated[
    float,
    typer.Option(
        "--val-fraction",
        min=0.05,
        max=0.5,
        help="Share of the training set held out (stratified) for validation.",
    ),
]
AmpOpt = Annotated[
    bool,
    typer.Option(
        "--amp",
        help="bfloat16 autocast: faster on CUDA and on CPUs with AVX-512 BF16/AMX, slightly "
        "different numbers.",
    ),
]
SplitSeedOpt = Annotated[
    int, typer.Option("--split-seed", help="Seed of the stratified validation hold-out.")
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handles_errors(command: F) -> F:
    """Turn user-caused errors into one line and an exit code, Ctrl-C into exit code 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EegtuneError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except OSError as exc:  # a path that cannot be written or read: no traceback either
            where = f" ({exc.filename})" if exc.filename else ""
            raise fail(
                f"{exc.strerror or exc}{where}; check the path and its permissions", 1
            ) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _offline(flag: bool) -> bool:
    return flag or os.environ.get("EEGTUNE_OFFLINE", "") not in ("", "0")


def load_data(dataset: DatasetName, data_dir: Path, offline: bool) -> Any:
    """Load a dataset for a command, fetching BCI IIIb with a progress bar when needed.

    The synthetic dataset is always generated with seed 0, so that every command and every
    worker sees the same trials.
    """
    from eegtune.data import load_dataset

    with download_progress() as hook:
        data = load_dataset(dataset.value, data_dir, offline=_offline(offline), progress=hook)
    if data.nan_filled:
        typer.echo(
            f"filled {data.nan_filled} NaN values with the training set's channel means", err=True
        )
    return data


# data -----------------------------------------------------------------------------------------


@data_app.command("fetch")
@handles_errors
def data_fetch(data_dir: DataDirOpt = Path("data")) -> None:
    """Download the four BCI IIIb files from pinned public mirrors and verify them."""
    from eegtune.data import FILES
    from eegtune.fetch import fetch_bci_iiib

    with download_progress() as hook:
        fetched = fetch_bci_iiib(data_dir, progress=hook)
    present = len(FILES) - len(fetched)
    typer.echo(
        f"fetched {len(fetched)} file(s), {present} already present in {data_dir}; "
        "all files verified"
        if fetched
        else f"all {len(FILES)} files already present in {data_dir}"
    )


@data_app.command("info")
@handles_errors
def data_info(data_dir: DataDirOpt = Path("data")) -> None:
    """Show shape, NaN count, class balance and published-fingerprint match of each file."""
    from rich.table import Table

    from eegtune.data import FILES, DataError, inspect_file

    table = Table(title=f"BCI IIIb files in {data_dir}")
    for column in ("file", "shape", "NaN", "left / right", "published copy"):
        table.add_column(column)
    problems = []
    for name in FILES:
        path = Path(data_dir) / name
        try:
            info = inspect_file(path)
        except DataError as exc:
            table.add_row(
                name,
                "-",
                "-",
                "-",
                "[red]missing[/red]" if not path.exists() else "[red]invalid[/red]",
            )
            problems.append(str(exc))
            continue
        balance = f"{info.class_counts.get(1, 0)} / {info.class_counts.get(2, 0)}"
        match = "yes" if info.matches_published else "[yellow]no (loads anyway)[/yellow]"
        table.add_row(name, "x".join(map(str, info.shape)), str(info.n_nan), balance, match)
    make_console().print(table)
    if problems:
        more = f" (and {len(problems) - 1} more, see the table)" if len(problems) > 1 else ""
        raise fail(problems[0] + more)


# train ----------------------------------------------------------------------------------------


@app.command()
@handles_errors
def train(
    model: Annotated[ModelName, typer.Option(help="Network to train.")] = ModelName.eegnet,
    activation: Annotated[
        ActivationName, typer.Option(help="Activation function of the network.")
    ] = ActivationName.elu,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.95, help="Dropout probability.")] = 0.25,
    lr: Annotated[float, typer.Option(min=1e-8, help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Mini-batch size.")] = 64,
    weight_decay: Annotated[
        float, typer.Option(min=0.0, help="Adam weight decay (L2 penalty).")
    ] = 1e-3,
    epochs: Annotated[int, typer.Option(min=1, help="Number of training epochs.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of weights, shuffling and dropout.")] = 0,
    val_fraction: ValFractionOpt = 0.2,
    split_seed: SplitSeedOpt = 0,
    test: Annotated[
        bool,
        typer.Option(
            "--test", help="Also report test accuracy of the final weights (off by default)."
        ),
    ] = False,
    dataset: DatasetOpt = DatasetName.bci_iiib,
    data_dir: DataDirOpt = Path("data"),
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = False,
) -> None:
    """Train one configuration on a stratified hold-out split (the lab's baseline job)."""
    from eegtune.models import build_model, count_parameters
    from eegtune.training import evaluate_accuracy, fit, resolve_device, set_seed

    torch_device = resolve_device(device)
    data = load_data(dataset, data_dir, offline)
    split = data.holdout(val_fraction, split_seed)
    set_seed(seed)
    net = build_model(model.value, activation.value, dropout, **data.model_kwargs)
    typer.echo(
        f"{model.value} ({activation.value}, {count_parameters(net):,} parameters) on "
        f"{data.name}: {len(split[1])} train / {len(split[3])} val trials, device {torch_device}",
        err=True,
    )
    with epoch_progress(epochs, f"{model.value}/{activation.value}") as on_epoch:
        result = fit(
            net,
            *split,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            seed=seed,
            device=torch_device,
            callback=on_epoch,
            amp=amp,
        )
    if result.status == "diverged":
        raise fail(f"{result.message}; try a lower --lr", 1)
    last = result.history[-1]
    typer.echo(
        f"val accuracy {100 * result.best_val_acc:.2f}% (best epoch {result.best_epoch} of "
        f"{len(result.history)}; last epoch {100 * last.val_acc:.2f}%; "
        f"{result.seconds:.1f} s)"
    )
    if test:
        _, test_acc = evaluate_accuracy(net, data.x_test, data.y_test, torch_device)
        typer.echo(
            f"test accuracy {100 * test_acc:.2f}% (final weights, {len(data.y_test)} trials)"
        )


class SamplerName(StrEnum):
    tpe = "tpe"
    random = "random"
    cmaes = "cmaes"
    gp = "gp"


class PrunerName(StrEnum):
    hyperband = "hyperband"
    median = "median"
    patient = "patient"
    none = "none"


StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage: sqlite:///f.db, postgresql://..., mysql://..., redis://... or a "
        "journal file path. Default: $EEGTUNE_STORAGE or studies/eegtune.journal.",
        show_default=False,
    ),
]


@app.command()
@handles_errors
def search(
    model: Annotated[ModelName, typer.Option(help="Network whose hyperparameters to tune.")],
    trials: Annotated[
        int,
        typer.Option(min=1, help="Target number of finished trials in the study (not per run)."),
    ] = 50,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs per trial.")] = 300,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study name (default: the model's name).", show_default=False),
    ] = None,
    storage: StorageOpt = None,
    space: Annotated[
        Path | None,
        typer.Option(
            help="TOML search-space file overriding the model's preset in studies/.",
            show_default=False,
        ),
    ] = None,
    sampler: Annotated[SamplerName, typer.Option(help="Optuna sampler.")] = SamplerName.tpe,
    pruner: Annotated[
        PrunerName | None,
        typer.Option(
            help="Pruner of poor trials (default chosen by benchmark: hyperband).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the sampler and of each trial's training.")
    ] = 0,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on this machine, sharing the storage.")
    ] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="End the search after this many seconds: no new trials start, and a running "
            "trial is cut after its current epoch (recorded as failed, with its curves so far).",
            show_default=False,
        ),
    ] = None,
    val_fraction: ValFractionOpt = 0.2,
    split_seed: SplitSeedOpt = 0,
    dataset: DatasetOpt = DatasetName.bci_iiib,
    data_dir: DataDirOpt = Path("data"),
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = False,
) -> None:
    """Run an Optuna study: sample, train, prune; resumable and parallel."""
    from eegtune.search import DEFAULT_PRUNER, SearchSettings, run_search
    from eegtune.space import load_space
    from eegtune.training import resolve_device

    load_space(model.value, space)  # bad input fails before any download or storage write
    resolve_device(device)
    settings = SearchSettings(
        model=model.value,
        trials=trials,
        epochs=epochs,
        study_name=study,
        storage=storage,
        space=str(space) if space is not None else None,
        sampler=sampler.value,
        pruner=pruner.value if pruner is not None else DEFAULT_PRUNER,
        seed=seed,
        dataset=dataset.value,
        data_dir=str(data_dir),
        offline=_offline(offline),
        device=device,
        val_fraction=val_fraction,
        split_seed=split_seed,
        workers=workers,
        timeout=timeout,
        amp=amp,
    )
    data = load_data(dataset, data_dir, offline)
    typer.echo(
        f"study {settings.name!r}: {model.value} on {dataset.value}, target {trials} trials, "
        f"up to {epochs} epochs each, sampler {settings.sampler}, pruner {settings.pruner}, "
        f"{workers} worker(s)",
        err=True,
    )
    from rich.live import Live

    final = None
    with Live(console=make_console(stderr=True), refresh_per_second=4, transient=False) as live:

        def show(status: Any) -> None:
            live.update(render_status(status))

        try:
            final = run_search(settings, on_status=show, data_set=data)
        except KeyboardInterrupt:
            live.stop()
            _print_summary(settings, interrupted=True)
            raise
    _print_summary(settings, final=final)


def _print_summary(settings: Any, final: Any = None, interrupted: bool = False) -> None:
    """Final table of the best trials (read again from the storage after an interruption)."""
    from eegtune.progress import snapshot
    from eegtune.study import load_study, open_storage

    if final is None:
        try:
            study = load_study(open_storage(settings.storage, create=False), settings.name)
        except EegtuneError:
            return
        final = snapshot(study, settings.trials, 0.0, 0)
    console = make_console()
    console.print()
    if final.best_trials:
        console.print(trials_table(f"best trials of study {settings.name!r}", final.best_trials))
    verb = "interrupted" if interrupted else "timeout" if final.timed_out else "done"
    resume = interrupted or final.timed_out
    console.print(
        f"{verb}: {final.finished}/{final.target} finished ({final.complete} complete, "
        f"{final.pruned} pruned), {final.failed} failed"
        + ("; run the same command again to finish the remaining trials" if resume else "")
    )


@app.command()
@handles_errors
def report(
    study: Annotated[
        list[str] | None,
        typer.Option(
            "--study",
            help="Study to report (repeatable; default: every study in the storage).",
            show_default=False,
        ),
    ] = None,
    storage: StorageOpt = None,
    top: Annotated[
        int, typer.Option(min=1, help="Best trials listed and exported per study.")
    ] = 10,
    out: Annotated[Path, typer.Option(help="Folder for CSV, JSON, charts and index.html.")] = Path(
        "studies/report"
    ),
) -> None:
    """Print the best settings and export best trials (CSV/JSON) and Plotly charts (HTML)."""

    from eegtune.report import collect, headline, write_report
    from eegtune.study import open_storage, quiet_optuna

    quiet_optuna()
    reports = collect(open_storage(storage, create=False), study)
    console = make_console()
    for r in reports:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(r.states.items()))
        console.print(trials_table(f"study {r.name!r} ({r.model}): {states}", r.rows(top)))
    console.print(headline_table(headline(reports)))
    written = write_report(reports, out, top=top)
    console.print(f"wrote {len(written)} files to {out} (open {out / 'index.html'})")


@app.command()
@handles_errors
def evaluate(
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study to evaluate (default: the only study in the storage).",
            show_default=False,
        ),
    ] = None,
    storage: StorageOpt = None,
    seeds: Annotated[int, typer.Option(min=1, help="Retraining seeds (0..N-1).")] = 5,
    per_activation: Annotated[
        bool,
        typer.Option("--per-activation", help="Evaluate the best trial of each activation."),
    ] = False,
    models_dir: Annotated[
        Path, typer.Option(help="Where trained weights and their config JSON are saved.")
    ] = Path("studies/models"),
    dataset: Annotated[
        DatasetName | None,
        typer.Option(
            "--dataset",
            help="Dataset; default and only allowed value: the one the study was searched on.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOpt = Path("data"),
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = False,
) -> None:
    """Retrain the best configuration with several seeds and measure test accuracy once each."""
    import optuna

    from eegtune.evaluate import LAB_BASELINE, EvaluateError, choose_configs, evaluate_study
    from eegtune.study import load_study, open_storage, quiet_optuna
    from eegtune.training import resolve_device

    quiet_optuna()
    torch_device = resolve_device(device)
    opened = open_storage(storage, create=False)
    if study is None:
        names = optuna.study.get_all_study_names(opened)
        if len(names) != 1:
            listing = ", ".join(names) or "none"
            raise EvaluateError(f"choose a study with --study (studies in this storage: {listing})")
        study = names[0]
    loaded = load_study(opened, study)
    choose_configs(loaded, per_activation)  # fails early when nothing completed
    searched_on = DatasetName(loaded.user_attrs.get("dataset", "bci-iiib"))
    if dataset is not None and dataset != searched_on:
        raise EvaluateError(
            f"study {study!r} was searched on {searched_on.value}; evaluate it on the same "
            f"dataset (drop --dataset {dataset.value})"
        )
    dataset = searched_on
    data = load_data(dataset, data_dir, offline)

    def on_seed(label: str, seed: int, acc: float) -> None:
        typer.echo(f"{label}: seed {seed} test accuracy {100 * acc:.2f}%", err=True)

    results = evaluate_study(
        loaded,
        data,
        seeds=seeds,
        per_activation=per_activation,
        device=torch_device,
        models_dir=models_dir,
        on_seed=on_seed,
        amp=amp,
    )
    model_name = loaded.user_attrs.get("model")
    console = make_console()
    title = f"test accuracy of study {study!r} ({model_name}, {dataset.value})"
    console.print(evaluation_table(title, results))
    if model_name in LAB_BASELINE and dataset == DatasetName.bci_iiib:
        console.print(
            f"lab report baseline for {model_name}: {LAB_BASELINE[model_name]:.2f}% "
            "(best test epoch, optimistic)"
        )
    console.print(f"weights and configs saved under {models_dir / study}")


@app.command()
@handles_errors
def dashboard(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Start optuna-dashboard on the study storage; Ctrl-C stops it."""
    import socket

    from eegtune.study import StudyError, open_storage, quiet_optuna

    quiet_optuna()
    opened = open_storage(storage, create=False)
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StudyError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None
    from optuna_dashboard import run_server

    typer.echo(f"optuna-dashboard at http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        run_server(opened, host=host, port=port)  # bottle returns on Ctrl-C itself
    except KeyboardInterrupt:
        pass
    typer.echo("dashboard stopped")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
