"""The commands that read and test studies: ``report``, ``evaluate``, ``compare`` and
``dashboard`` (registered on the app of :mod:`eegtune.cli.options`; see :mod:`eegtune.cli.app`)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eegtune.cli.console import (
    compare_table,
    config_title,
    confusion_table,
    evaluation_table,
    headline_table,
    lab_table,
    make_console,
    references_table,
    retraining_table,
    trials_table,
)
from eegtune.cli.live import (
    clock_line,
    evaluation_progress,
    load_data,
    offline_or_env,
    progress_interval,
    status_display,
)
from eegtune.cli.options import (
    ActivationName,
    AmpOpt,
    ArtifactsOpt,
    DataDirOpt,
    DatasetOpt,
    DeviceOpt,
    FmaxOpt,
    FminOpt,
    ImageOpt,
    ModelName,
    ObjectiveName,
    OfflineOpt,
    PortfolioOpt,
    RaceOpt,
    ResampleOpt,
    StopWhenFlatOpt,
    StorageOpt,
    StudyFoldsOpt,
    SubjectOpt,
    TmaxOpt,
    TminOpt,
    WarmStartOpt,
    app,
    choice,
    handles_errors,
)
from eegtune.data.sources import parse_source
from eegtune.errors import ConfigError, SearchError
from eegtune.files import check_writable
from eegtune.names import (
    ACTIVATIONS,
    DEFAULT_PORTFOLIO,
    DEFAULT_RACE,
    DEFAULT_STOP_WHEN_FLAT,
    DEFAULT_WARM_START,
    LAB_DATASET,
    LAB_EPOCHS,
    MAX_SEED,
    NETWORKS,
    RACE_SPLITS,
)
from eegtune.search.artifacts import artifacts_dir, attach_once, open_artifacts

if TYPE_CHECKING:
    from eegtune.search.progress import SearchStatus

# report and evaluate --------------------------------------------------------------------------


def attach_report(store: Any, storage: Any, reports: list[Any], out: Path) -> None:
    """Attach the report's numbers (``best_trials.json``) to each study it covers, so that
    they live with the studies on every machine (nothing new when nothing changed)."""
    for r in reports:
        attach_once(store, storage, r.study, out / "best_trials.json", f"{r.name}-report.json")


def references_beside(data: Any, storage: Any, studies: list[Any]) -> list[Any]:
    """Train and test the classical references on ``data`` (seconds), one progress line each,
    and store them with ``studies`` so that their reports show them."""
    from eegtune.results.references import run_references, save_references

    typer.echo("classical references: CSP + LDA and tangent space + LR (seconds)", err=True)

    def done(r: Any) -> None:
        found = r.reason if r.accuracy is None else f"test accuracy {100 * r.accuracy:.1f}%"
        typer.echo(f"  {r.title}: {found} ({r.seconds:.1f} s)", err=True)

    results = run_references(data, on_done=done)
    for study in studies:
        save_references(storage, study, results)
    return results


def raced_plan(plan: Any, data: Any, storage: Any, top: int) -> Any:
    """The evaluation plan with its "best" configuration replaced by the winner of a race
    of the study's ``top`` finalists (one line per finalist, then the result)."""
    from eegtune.results.racing import race_study

    typer.echo(
        f"racing the {top} best trials of {plan.name!r} on fresh validation splits "
        "(--race 0 skips this)",
        err=True,
    )

    def shown(number: int, scores: list[float]) -> None:
        fresh = ", ".join(f"{100 * v:.1f}%" for v in scores[1:])
        typer.echo(f"  trial {number}: search {100 * scores[0]:.1f}%, fresh {fresh}", err=True)

    won = race_study(storage, plan.study, data, top=top, splits=RACE_SPLITS,
                     device=plan.device, on_finalist=shown)  # fmt: skip
    typer.echo(won.text, err=True)
    winner = next(t for t in plan.study.get_trials(deepcopy=False) if t.number == won.winner)
    return replace(plan, configs={"best": winner})


ReferencesOpt = Annotated[
    bool,
    typer.Option(
        "--references/--no-references",
        metavar="",
        help="Also train and test the classical references (CSP + LDA, tangent space + LR) on "
        "the same data; seconds, needs the 'references' extra.",
    ),
]


@app.command()
@handles_errors
def report(
    study: Annotated[
        list[str] | None,
        typer.Option(
            "--study",
            metavar="NAME",
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
    image: ImageOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Print the best settings and export best trials (CSV/JSON) and Plotly charts (HTML)."""
    from eegtune.results.collect import collect, headline
    from eegtune.results.images import check_formats
    from eegtune.results.report import write_report
    from eegtune.search.storages import close_storage, describe_storage, open_storage
    from eegtune.search.study import quiet_optuna

    quiet_optuna()
    images = check_formats(image or [])  # before the storage is opened
    opened = open_storage(storage, create=False)  # once for the whole command
    try:
        reports = collect(opened, study)
        check_writable(out)  # before anything is printed or written
        console = make_console()
        for r in reports:
            states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(r.states.items()))
            title = f"study {r.name!r} ({r.model}): {states}"
            console.print(trials_table(title, r.rows(top), r.objective))
        console.print(headline_table(headline(reports)))
        written = write_report(
            reports, out, top=top, storage=describe_storage(storage), images=images
        )
        attach_report(open_artifacts(storage, artifacts), opened, reports, out)
    finally:
        close_storage(opened)
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
        typer.Option(
            "--per-activation/--no-per-activation",
            metavar="",
            help="Evaluate the best trial of each activation.",
        ),
    ] = False,
    models_dir: Annotated[
        Path, typer.Option(help="Where trained weights and their config JSON are saved.")
    ] = Path("studies/models"),
    dataset: Annotated[
        str | None,
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
    artifacts: ArtifactsOpt = None,
    references: ReferencesOpt = False,
    race: RaceOpt = DEFAULT_RACE,
) -> None:
    """Retrain the best configuration with several seeds and measure test accuracy once each."""
    from eegtune.device import configure_process
    from eegtune.results.evaluate import evaluate_study, models_folder, plan_evaluation
    from eegtune.results.references import check_references
    from eegtune.search.storages import close_storage, open_storage
    from eegtune.search.study import quiet_optuna

    quiet_optuna()
    if references:
        check_references()  # a missing extra fails now, not after the retraining
    opened = open_storage(storage, create=False)  # once for the whole command
    try:
        plan = plan_evaluation(
            opened,
            study,
            dataset=dataset,
            seeds=seeds,
            per_activation=per_activation,
            device=device,
            models_dir=models_dir,
            amp=amp,
        )  # every check before the data are loaded
        check_writable(models_dir)  # before a seed trains, not after
        plan = replace(plan, artifacts=open_artifacts(storage, artifacts))
        configure_process(plan.device)
        data = load_data(plan.spec.source, data_dir, offline)
        if race and per_activation:
            typer.echo("note: --per-activation retrains each activation's best search score; "
                       "finalists are raced for the overall choice only", err=True)  # fmt: skip
        elif race:
            plan = raced_plan(plan, data, opened, race)
        make_console().print(retraining_table(plan))
        titles = {label: config_title(label, t.number) for label, t in plan.configs.items()}
        with evaluation_progress(plan.runs, seeds, titles) as (on_epoch, on_seed):
            results = evaluate_study(plan, data, storage=opened, on_seed=on_seed, on_epoch=on_epoch)
        found = references_beside(data, opened, [plan.study]) if references else []
    finally:
        close_storage(opened)
    model_name, searched_on = plan.spec.model, plan.spec.source
    console = make_console()
    title = f"test accuracy of study {plan.name!r} ({model_name}, {searched_on.describe()})"
    console.print(evaluation_table(title, results))
    for result in results:
        if len(result.classes) > 0 and result.confusion:
            console.print(confusion_table(result))
    if found:
        console.print(references_table(found))
    lab = NETWORKS[model_name].lab_test_acc if model_name in NETWORKS else None
    if lab is not None and searched_on.dataset == LAB_DATASET and not searched_on.subjects:
        console.print(
            f"lab report baseline for {model_name}: {lab:.2f}% (best test epoch, optimistic)"
        )
    console.print(
        f"weights and configs saved under {models_folder(models_dir, plan.name)}; new weights "
        f"attached to the study in {artifacts_dir(storage, artifacts)}"
    )


# compare --------------------------------------------------------------------------------------


@app.command()
@handles_errors
def compare(
    model: Annotated[
        list[ModelName] | None,
        choice(
            "network",
            "--model",
            help="Network (repeatable; default: every network).",
            show_default=False,
        ),
    ] = None,
    activation: Annotated[
        list[ActivationName] | None,
        choice(
            "activation",
            "--activation",
            help="Activation (repeatable; default: every activation).",
            show_default=False,
        ),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="Target finished trials per cell.")] = 20,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs per trial.")] = LAB_EPOCHS,
    seeds: Annotated[int, typer.Option(min=1, help="Test seeds per configuration (0..N-1).")] = 5,
    storage: StorageOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for the report.")] = Path("studies/report"),
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline",
            metavar="",
            help="Enqueue the lab's settings as trial 0 of each cell and test them too.",
        ),
    ] = True,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Cell studies are named PREFIX-NETWORK-ACTIVATION (default: compare, or "
            "compare-DATASET on other data than bci-iiib).",
            show_default=False,
        ),
    ] = None,
    objective: Annotated[
        ObjectiveName | None,
        choice(
            "objective",
            help="How a trial is scored (default smoothed for new cells; existing cells keep "
            "their own).",
            show_default=False,
        ),
    ] = None,
    folds: StudyFoldsOpt = None,
    portfolio: PortfolioOpt = DEFAULT_PORTFOLIO,
    stop_when_flat: StopWhenFlatOpt = DEFAULT_STOP_WHEN_FLAT,
    seed: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_SEED, help="Seed of the samplers and of each trial's training."
        ),
    ] = 0,
    models_dir: Annotated[Path, typer.Option(help="Where tested weights are saved.")] = Path(
        "studies/models"
    ),
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
    image: ImageOpt = None,
    artifacts: ArtifactsOpt = None,
    references: ReferencesOpt = True,
    race: RaceOpt = DEFAULT_RACE,
    warm_start: WarmStartOpt = DEFAULT_WARM_START,
) -> None:
    """Tune and test every network x activation cell; report each against the lab's settings
    and the classical references."""
    from eegtune.device import configure_process
    from eegtune.models.networks import check_input
    from eegtune.results.collect import collect
    from eegtune.results.compare import (
        CompareClock,
        cell_plans,
        compare_activations,
        evaluate_cells,
        mean_gains,
        planned_evaluations,
        race_cells,
        search_cell,
        warm_configs,
    )
    from eegtune.results.images import check_formats
    from eegtune.results.lab import lab_networks
    from eegtune.results.references import check_references
    from eegtune.results.report import write_report
    from eegtune.search.plan import dataset_label
    from eegtune.search.samplers import sampling_note
    from eegtune.search.storages import close_storage, describe_storage, open_storage
    from eegtune.search.study import load_study, quiet_optuna

    quiet_optuna()
    images = check_formats(image or [])  # a missing exporter fails now, not after hours
    source = parse_source(dataset, subject, fmin=fmin, fmax=fmax, tmin=tmin, tmax=tmax,
                          resample=resample)  # fmt: skip
    progress_interval()  # a bad $EEGTUNE_PROGRESS_INTERVAL fails before anything is written
    if references:
        try:
            check_references()
        except ConfigError as exc:  # the networks' table does not depend on them
            typer.echo(f"warning: no references: {exc}", err=True)
            references = False
    models = [str(m) for m in model] if model else list(NETWORKS)
    activations = [str(a) for a in activation] if activation else list(ACTIVATIONS)
    if prefix is None:
        prefix = (
            "compare"
            if source.dataset == LAB_DATASET
            else f"compare-{dataset_label(source.dataset)}"
        )
    cells = cell_plans(
        models, activations, prefix, trials=trials, epochs=epochs, storage=storage, seed=seed,
        dataset=source, data_dir=str(data_dir), offline=offline_or_env(offline), device=device,
        objective=None if objective is None else str(objective), folds=folds, amp=amp,
        portfolio=portfolio, stop_when_flat=stop_when_flat,
    )  # fmt: skip
    note = sampling_note(cells[0].sampler_name, trials)
    if note:
        typer.echo(note, err=True)
    if baseline and epochs < LAB_EPOCHS:
        typer.echo(f"note: the lab trains its settings for {LAB_EPOCHS} epochs; here every "
                   f"trial, the baseline too, gets at most {epochs}, so the lab's row is its "
                   f"settings cut short (--epochs {LAB_EPOCHS} for the lab's own run)",
                   err=True)  # fmt: skip
    configure_process(cells[0].device)
    data = load_data(source, data_dir, offline)
    for name in models:
        check_input(name, data)
    if cells[0].sizing_note(data):
        typer.echo(cells[0].sizing_note(data), err=True)
    check_writable(out)  # before hours of searching, not after
    check_writable(models_dir)
    store = open_artifacts(storage, artifacts)
    opened = open_storage(storage)  # once for the whole command, closed at its end
    try:
        clock = CompareClock(cells, seeds, baseline, race=race)  # one estimate for the whole run
        for i, cell in enumerate(cells, 1):
            phase = f"compare: cell {i}/{len(cells)} searching"
            typer.echo(
                f"cell {i}/{len(cells)}: {cell.name}, target {trials} trials; "
                + clock_line(clock, "compare"),
                err=True,
            )
            try:
                with status_display() as show:

                    def shown(status: SearchStatus, name: str = cell.name, at: str = phase) -> None:
                        clock.search(name, status)
                        status.overall = clock_line(clock, at)
                        show(status)

                    earlier = [load_study(opened, c.name) for c in cells[: i - 1]
                               if c.model == cell.model] if warm_start else []  # fmt: skip
                    final = search_cell(
                        cell, baseline=baseline, data_set=data, storage=opened, on_status=shown,
                        warm=warm_configs(earlier, cell.activation),
                    )  # fmt: skip
                if final.stopped:  # --stop-when-flat ended the cell before its target
                    typer.echo(f"{cell.name}: {final.stopped}", err=True)
            except SearchError as exc:  # this cell's row will say why; the other cells go on
                typer.echo(f"warning: cell {cell.name} stopped: {exc}", err=True)
        if race:
            typer.echo(f"racing the {race} best trials of each cell on fresh validation "
                       "splits (--race 0 skips this)", err=True)  # fmt: skip
            race_cells(
                cells, top=race, data_set=data, storage=opened, device=cells[0].device,
                on_race=partial(_say_race, clock),
            )  # fmt: skip
        planned = planned_evaluations(opened, cells, baseline, race)
        clock.evaluations(planned)
        with evaluation_progress(planned, seeds, clock=clock) as (on_epoch, on_seed):
            results = evaluate_cells(
                cells, seeds=seeds, baseline=baseline, data_set=data, storage=opened,
                device=cells[0].device,
                models_dir=str(models_dir), on_epoch=on_epoch, on_seed=on_seed,
                artifacts=store, race=race,
            )  # fmt: skip
        studies = [load_study(opened, c.name) for c in cells]
        found = references_beside(data, opened, studies) if references else []
        console = make_console()
        console.print(compare_table(results, found))
        for gain in mean_gains(results):
            console.print(f"{gain.model}: {gain.text}")
        for verdict in compare_activations(results):
            console.print(f"{verdict.model}: {verdict.text}")
        reports = collect(opened, [c.name for c in cells])
        for network in lab_networks(reports):
            console.print(lab_table(network))
        written = write_report(
            reports, out, storage=describe_storage(storage), compare=results, images=images
        )
        attach_report(store, opened, reports, out)
        console.print(f"wrote {len(written)} files to {out} (open {out / 'index.html'})")
    finally:
        close_storage(opened)


def _say_race(clock: Any, name: str, race: Any) -> None:
    """Say which finalist of cell ``name`` won its race, and where the whole run stands."""
    clock.race_done(name, race.cost)
    typer.echo(f"{name}: {race.text}; " + clock_line(clock, "compare: racing"), err=True)


# dashboard ------------------------------------------------------------------------------------


@app.command()
@handles_errors
def dashboard(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    verbose: Annotated[
        bool,
        typer.Option("--verbose/--quiet", metavar="", help="Print one line per HTTP request."),
    ] = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Start optuna-dashboard on the study storage; Ctrl-C stops it."""
    from eegtune.cli.dashboard import check_port, serve
    from eegtune.search.storages import open_storage
    from eegtune.search.study import quiet_optuna

    quiet_optuna()
    opened = open_storage(storage, create=False)
    check_port(host, port)
    typer.echo(f"optuna-dashboard at http://{host}:{port}/ (Ctrl-C to stop)")
    serve(opened, host, port, access_log=verbose, artifacts=open_artifacts(storage, artifacts))
    typer.echo("dashboard stopped")
