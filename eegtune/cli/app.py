"""The ``eegtune`` command line. Commands are thin: parse, call the library, render.

This module holds the entry point and the commands that make results (``data``, ``train``,
``search``); :mod:`eegtune.cli.studies` the ones that read and test them (``report``,
``evaluate``, ``compare``, ``dashboard``). Heavy libraries (torch, optuna, plotly, numpy) are
imported inside the commands so that ``eegtune --help`` answers instantly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eegtune import signals
from eegtune.cli.console import data_info_table, make_console, summary_line, trials_table
from eegtune.cli.live import (
    download_progress,
    epoch_progress,
    load_data,
    offline_or_env,
    progress_interval,
    status_display,
)
from eegtune.cli.options import (
    ActivationName,
    AmpOpt,
    Command,
    DataDirOpt,
    DatasetOpt,
    DeviceOpt,
    FmaxOpt,
    FminOpt,
    ModelName,
    ObjectiveName,
    OfflineOpt,
    PortfolioOpt,
    PrunerName,
    ResampleOpt,
    SamplerName,
    SplitSeedOpt,
    StopWhenFlatOpt,
    StorageOpt,
    StudyFoldsOpt,
    StudySplitSeedOpt,
    StudyValFractionOpt,
    SubjectOpt,
    TmaxOpt,
    TminOpt,
    ValFractionOpt,
    app,
    choice,
    data_app,
    fail,
    handles_errors,
)
from eegtune.data.sources import parse_source
from eegtune.names import (
    DEFAULT_ACTIVATION,
    DEFAULT_NETWORK,
    DEFAULT_PORTFOLIO,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    DEFAULT_STOP_WHEN_FLAT,
    DROPOUT_MAX,
    LAB_DATASET,
    MAX_SEED,
)
from eegtune.signals import exit_code

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from torch import nn

    from eegtune.search.plan import SearchPlan
    from eegtune.search.progress import SearchStatus
    from eegtune.training import EpochRecord

# data -----------------------------------------------------------------------------------------


@data_app.command("fetch")
@handles_errors
def data_fetch(data_dir: DataDirOpt = Path("data")) -> None:
    """Download the four BCI IIIb files from pinned public mirrors and verify them."""
    from eegtune.data.bciiiib import FILES
    from eegtune.data.fetch import fetch_bci_iiib

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
    from eegtune.data.bciiiib import inspect_folder

    found = inspect_folder(data_dir)
    make_console().print(data_info_table(f"BCI IIIb files in {data_dir}", found))
    problems = [str(info) for info in found.values() if isinstance(info, Exception)]
    if problems:
        more = f" (and {len(problems) - 1} more, see the table)" if len(problems) > 1 else ""
        raise fail(problems[0] + more)


# train ----------------------------------------------------------------------------------------


@app.command()
@handles_errors
def train(
    model: Annotated[ModelName, choice("network", help="Network to train.")] = DEFAULT_NETWORK,
    activation: Annotated[
        ActivationName, choice("activation", help="Activation function of the network.")
    ] = DEFAULT_ACTIVATION,
    dropout: Annotated[
        float, typer.Option(min=0.0, max=DROPOUT_MAX, help="Dropout probability.")
    ] = 0.25,
    lr: Annotated[float, typer.Option(min=1e-8, help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Mini-batch size.")] = 64,
    weight_decay: Annotated[
        float, typer.Option(min=0.0, help="Adam weight decay (L2 penalty).")
    ] = 1e-3,
    epochs: Annotated[int, typer.Option(min=1, help="Number of training epochs.")] = 300,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of weights, shuffling and dropout.")
    ] = 0,
    val_fraction: ValFractionOpt = 0.2,
    split_seed: SplitSeedOpt = 0,
    test: Annotated[
        bool,
        typer.Option(
            "--test/--no-test",
            metavar="",
            help="Also report test accuracy of the final weights (off by default).",
        ),
    ] = False,
    dataset: DatasetOpt = LAB_DATASET,
    subject: SubjectOpt = None,
    data_dir: DataDirOpt = Path("data"),
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = False,
    fmin: FminOpt = None,
    fmax: FmaxOpt = None,
    tmin: TminOpt = None,
    tmax: TmaxOpt = None,
    resample: ResampleOpt = None,
    runs_dir: Annotated[
        Path,
        typer.Option(
            envvar="EEGTUNE_RUNS_DIR",
            help="Each run gets a folder here: epochs.csv (per-epoch loss and accuracy), "
            "summary.json (settings, seed, data fingerprint, versions, outcome), weights.pt. "
            "Also $EEGTUNE_RUNS_DIR.",
        ),
    ] = Path("studies/runs"),
) -> None:
    """Train one configuration on a stratified hold-out split (the lab's baseline job)."""
    from eegtune.data.dataset import chance_level
    from eegtune.device import configure_process, resolve_device
    from eegtune.models.networks import check_input, count_parameters
    from eegtune.results.runs import RunFolder
    from eegtune.training import evaluate_accuracy, train_configuration

    source = parse_source(dataset, subject, fmin=fmin, fmax=fmax, tmin=tmin, tmax=tmax,
                          resample=resample)  # fmt: skip
    torch_device = resolve_device(device)
    configure_process(torch_device)
    data = load_data(source, data_dir, offline)
    check_input(str(model), data)
    split = data.holdout(val_fraction, split_seed)
    params = {"activation": str(activation), "dropout": dropout, "lr": lr,
              "batch_size": batch_size, "weight_decay": weight_decay}  # fmt: skip
    where = "npz" if source.dataset.startswith("npz:") else source.dataset  # not a whole path
    run = RunFolder(runs_dir, f"{model}-{activation}-{where}")
    summary: dict[str, Any] = {
        "model": str(model), "params": params, "epochs": epochs, "seed": seed,
        "split": {"val_fraction": val_fraction, "split_seed": split_seed,
                  "train": len(split.y_train), "val": len(split.y_val)},
        "data": source.attrs(), "fingerprint": data.fingerprint(), "device": str(torch_device),
        "amp": amp, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip

    progress: list[Callable[[EpochRecord], None]] = []

    def on_epoch(record: EpochRecord) -> None:
        run.add_epoch(record)  # epochs.csv grows as the run goes
        progress[0](record)

    try:
        with contextlib.ExitStack() as stack:

            def announce(net: nn.Module) -> None:  # the header, then the bar, once the net exists
                typer.echo(
                    f"{model} ({activation}, {count_parameters(net):,} parameters) on "
                    f"{source.describe()}: {len(split.y_train)} train / {len(split.y_val)} val "
                    f"trials, {data.n_classes} classes, device {torch_device}",
                    err=True,
                )
                progress.append(
                    stack.enter_context(epoch_progress(epochs, f"{model}/{activation}"))
                )

            net, result = train_configuration(
                str(model), params, *split, shape=data.model_kwargs, epochs=epochs, seed=seed,
                device=torch_device, callback=on_epoch, amp=amp, on_model=announce,
            )  # fmt: skip
    except KeyboardInterrupt:
        run.write_summary({**summary, "status": "interrupted"})
        raise
    outcome: dict[str, Any] = {
        "status": result.status, "message": result.message, "seconds": result.seconds,
        "best_epoch": result.best_epoch, "best_val_acc": result.best_val_acc,
    }  # fmt: skip
    if result.status == "diverged" or result.best_val_acc is None:
        run.write_summary({**summary, **outcome})
        raise fail(f"{result.message}; try a lower --lr", 1)
    run.save_weights(net)
    last = result.history[-1]
    typer.echo(
        f"val accuracy {100 * result.best_val_acc:.2f}% (best epoch {result.best_epoch} of "
        f"{len(result.history)}; last epoch {100 * (last.val_acc or 0.0):.2f}%; "
        f"chance {100 * chance_level(split.y_val):.2f}%; {result.seconds:.1f} s)"
    )
    if test:
        _, test_acc = evaluate_accuracy(net, data.x_test, data.y_test, torch_device)
        outcome["test_acc"] = test_acc
        typer.echo(
            f"test accuracy {100 * test_acc:.2f}% (final weights, {len(data.y_test)} trials; "
            f"chance {100 * data.chance:.2f}%)"
        )
    run.write_summary({**summary, **outcome})
    typer.echo(f"run saved in {run.path} (epochs.csv, summary.json, weights.pt)")


# search ---------------------------------------------------------------------------------------


@app.command()
@handles_errors
def search(
    model: Annotated[ModelName, choice("network", help="Network whose hyperparameters to tune.")],
    trials: Annotated[
        int,
        typer.Option(min=1, help="Target number of finished trials in the study (not per run)."),
    ] = 50,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs per trial.")] = 300,
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name (default: the model's name, with the dataset's unless it is "
            "bci-iiib: eegnet, eegnet-synthetic).",
            show_default=False,
        ),
    ] = None,
    storage: StorageOpt = None,
    space: Annotated[
        Path | None,
        typer.Option(
            help="TOML search-space file overriding the model's preset in studies/.",
            show_default=False,
        ),
    ] = None,
    sampler: Annotated[SamplerName, choice("sampler", help="Optuna sampler.")] = DEFAULT_SAMPLER,
    pruner: Annotated[
        PrunerName,
        choice("pruner", help="Pruner of poor trials (default chosen by benchmark)."),
    ] = DEFAULT_PRUNER,
    seed: Annotated[
        int,
        typer.Option(min=0, max=MAX_SEED, help="Seed of the sampler and of each trial's training."),
    ] = 0,
    objective: Annotated[
        ObjectiveName | None,
        choice(
            "objective",
            help="How a trial is scored: smoothed (best 3-epoch mean, the default of a new "
            "study) or best epoch. An existing study keeps its own.",
            show_default=False,
        ),
    ] = None,
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
    val_fraction: StudyValFractionOpt = None,
    split_seed: StudySplitSeedOpt = None,
    folds: StudyFoldsOpt = None,
    portfolio: PortfolioOpt = DEFAULT_PORTFOLIO,
    stop_when_flat: StopWhenFlatOpt = DEFAULT_STOP_WHEN_FLAT,
    dataset: DatasetOpt = LAB_DATASET,
    subject: SubjectOpt = None,
    data_dir: DataDirOpt = Path("data"),
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = False,
    fmin: FminOpt = None,
    fmax: FmaxOpt = None,
    tmin: TminOpt = None,
    tmax: TmaxOpt = None,
    resample: ResampleOpt = None,
) -> None:
    """Run an Optuna study: sample, train, prune; resumable and parallel."""
    from eegtune.data.dataset import chance_level
    from eegtune.device import configure_process
    from eegtune.models.networks import check_input
    from eegtune.search.plan import plan_search
    from eegtune.search.run import run_search
    from eegtune.search.samplers import sampling_note
    from eegtune.search.storages import close_storage, open_storage

    source = parse_source(dataset, subject, fmin=fmin, fmax=fmax, tmin=tmin, tmax=tmax,
                          resample=resample)  # fmt: skip
    progress_interval()  # a bad $EEGTUNE_PROGRESS_INTERVAL fails before anything is written
    plan = plan_search(  # bad input fails here, before any download or storage write
        str(model),
        trials,
        epochs=epochs,
        study_name=study,
        storage=storage,
        space=str(space) if space is not None else None,
        sampler=str(sampler),
        pruner=str(pruner),
        seed=seed,
        dataset=source,
        data_dir=str(data_dir),
        offline=offline_or_env(offline),
        device=device,
        val_fraction=val_fraction,
        split_seed=split_seed,
        folds=folds,
        workers=workers,
        timeout=timeout,
        objective=None if objective is None else str(objective),
        amp=amp,
        portfolio=portfolio,
        stop_when_flat=stop_when_flat,
    )
    note = sampling_note(plan.sampler_name, trials)
    if note:
        typer.echo(note, err=True)
    if workers == 1:
        configure_process(plan.device)  # this process trains
    data = load_data(source, data_dir, offline)
    check_input(plan.model, data)
    if plan.sizing_note(data):
        typer.echo(plan.sizing_note(data), err=True)
    chance = chance_level(data.y_train)  # the stratified split's too

    def header(started: SearchPlan) -> None:  # after the study is checked, before trial 0
        typer.echo(
            f"study {started.name!r}: {model} on {source.describe()} ({data.n_classes} classes, "
            f"chance {100 * chance:.1f}%), target {trials} trials, up to {epochs} epochs each, "
            f"sampler {started.sampler_name}, pruner {started.pruner_name}, seed {seed}, "
            f"scored on {started.spec.describe_split()}, {workers} worker(s)",
            err=True,
        )

    opened = open_storage(storage)  # once for the whole command, closed at its end
    try:
        try:
            with status_display() as show:
                final = run_search(
                    plan, on_status=show, data_set=data, storage=opened, poll_interval=0.5,
                    on_start=header,
                )  # fmt: skip
        except KeyboardInterrupt as exc:
            _print_summary(plan, opened, None, interrupted=True)
            raise typer.Exit(exit_code(exc)) from None  # the summary said "interrupted": once
        _print_summary(plan, opened, final)
    finally:
        close_storage(opened)
    if final.finished < final.target and not final.stopped:  # --timeout: not done, say so
        raise typer.Exit(SHORT_OF_TARGET_EXIT)


SHORT_OF_TARGET_EXIT = 3
"""Exit code of a search that stopped short of its target without an error (``--timeout``)."""


def _print_summary(
    plan: SearchPlan,
    storage: BaseStorage,
    final: SearchStatus | None,
    interrupted: bool = False,
) -> None:
    """Final table of the best trials (read again from the storage after an interruption)."""
    from eegtune.search.progress import read_status

    if final is None:
        final = read_status(storage, plan.name, plan.trials)
        if final is None:
            return
    console = make_console()
    console.print()
    if final.best_trials:
        title = f"best trials of study {plan.name!r}"
        console.print(trials_table(title, final.best_trials, final.objective))
    console.print(summary_line(final, interrupted))


# report, evaluate, compare and dashboard register themselves on the same app, after these.
import eegtune.cli.studies  # noqa: E402, F401

for _info in [*app.registered_commands, *data_app.registered_commands]:
    _info.cls = Command  # every command's --help line shows no <bool>


def main() -> None:
    """Console-script entry point: SIGTERM and SIGHUP stop work like Ctrl-C (exit 128 + N)."""
    signals.install()
    signals.log_to_stderr()
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
