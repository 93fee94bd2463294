"""Reports: tables of the best trials, CSV/JSON export, Plotly figures and an HTML index.

Reads studies; never trains. Every file is written to a temporary name and moved into place,
so an interrupted report leaves no half-written file. Charts work offline: ``plotly.min.js``
is written once beside them and referenced, never fetched from a CDN.

Export schema (``best_trials.csv`` columns; the JSON holds the same rows per study)::

    study, model, trial, value, activation, dropout, lr, batch_size, weight_decay,
    best_epoch, epochs_trained, duration_s, device, n_params

``value`` is the best validation accuracy (fraction) of a completed trial; rows are the top
``--top`` completed trials of each study, best first.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.errors import EegtuneError
from eegtune.files import atomic_write_text, safe_name
from eegtune.names import ACTIVATIONS, NETWORKS, network_title
from eegtune.study import COLUMNS, EVALUATION_KEY, best_by_activation, completed_trials, trial_row

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "ReportError",
    "StudyReport",
    "build_figures",
    "collect",
    "headline",
    "write_report",
]

SCHEMA_VERSION = 1


class ReportError(EegtuneError):
    """Nothing to report: no study, an empty study, or only failed trials."""


@dataclass
class StudyReport:
    """What the report needs from one study."""

    study: optuna.Study
    name: str
    model: str
    states: dict[str, int]
    complete: list[FrozenTrial]
    evaluation: dict[str, Any] = field(default_factory=dict)

    def rows(self, top: int) -> list[dict[str, Any]]:
        return [trial_row(self.name, self.model, t) for t in self.complete[:top]]

    def best_by_activation(self) -> dict[str, FrozenTrial]:
        return best_by_activation(self.complete)

    @property
    def title(self) -> str:
        return f"{network_title(self.model)} ({self.name})"


def collect(storage: BaseStorage, names: list[str] | None = None) -> list[StudyReport]:
    """Read the named studies (all studies in the storage when ``names`` is empty).

    Raises:
        ReportError: when there is no study, or no named study has a completed trial.
    """
    import optuna

    from eegtune.study import load_study

    names = list(names or optuna.study.get_all_study_names(storage))
    if not names:
        raise ReportError("no studies in this storage; run `eegtune search` first")
    reports = []
    for name in names:
        study = load_study(storage, name)
        trials = study.get_trials(deepcopy=False)
        complete = completed_trials(study)
        reports.append(
            StudyReport(
                study=study,
                name=name,
                model=str(study.user_attrs.get("model", name)),
                states=dict(Counter(t.state.name for t in trials)),
                complete=complete,
                evaluation=dict(study.user_attrs.get(EVALUATION_KEY) or {}),
            )
        )
    if not any(r.complete for r in reports):
        detail = "; ".join(
            f"{r.name}: " + (", ".join(f"{n} {s.lower()}" for s, n in r.states.items()) or "empty")
            for r in reports
        )
        raise ReportError(
            f"no completed trials to report ({detail}); run `eegtune search` until trials complete"
        )
    return reports


def headline(reports: list[StudyReport]) -> list[dict[str, Any]]:
    """The lab's table: per network x activation, best val accuracy and test mean +- std."""
    rows = []
    for report in reports:
        best = report.best_by_activation()
        for activation in ACTIVATIONS:
            trial = best.get(activation)
            evaluation = report.evaluation.get(activation)
            overall = report.evaluation.get("best")
            if evaluation is None and overall and overall["params"]["activation"] == activation:
                evaluation = overall
            rows.append(
                {
                    "study": report.name,
                    "model": report.model,
                    "activation": activation,
                    "val_acc": trial.value if trial else None,
                    "trial": trial.number if trial else None,
                    "test_mean": evaluation["mean"] if evaluation else None,
                    "test_std": evaluation["std"] if evaluation else None,
                    "test_seeds": len(evaluation["test_acc"]) if evaluation else 0,
                }
            )
    return rows


# --------------------------------------------------------------------------- figures


def _history(trial: FrozenTrial) -> dict[str, list[float]]:
    return trial.user_attrs.get("history") or {}


def _curve(values: list[float], name: str, **style: Any) -> go.Scatter:
    """An accuracy-per-epoch line (fractions shown as percent, epochs from 1)."""
    import plotly.graph_objects as go

    epochs = list(range(1, len(values) + 1))
    return go.Scatter(x=epochs, y=[100 * v for v in values], mode="lines", name=name, **style)


def comparison_figure(report: StudyReport) -> go.Figure:
    """The lab's figure: train and val accuracy per epoch of the best trial of each activation."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for activation, trial in sorted(report.best_by_activation().items()):
        history = _history(trial)
        for key, dash in (("train_acc", "dot"), ("val_acc", "solid")):
            name = f"{activation} {key.split('_')[0]}"
            fig.add_trace(_curve(history.get(key) or [], name, line={"dash": dash}))
    fig.update_layout(
        title=f"{report.title}: accuracy per epoch, best trial of each activation",
        xaxis_title="epoch",
        yaxis_title="accuracy (%)",
    )
    return fig


def activation_box_figure(reports: list[StudyReport]) -> go.Figure:
    """Validation accuracy of every completed trial by activation, one box per network."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for report in reports:
        fig.add_trace(
            go.Box(
                x=[t.params.get("activation") for t in report.complete],
                y=[100 * (t.value or 0.0) for t in report.complete],
                name=report.title,
                boxpoints="all",
            )
        )
    fig.update_layout(
        title="Validation accuracy by activation and network (completed trials)",
        boxmode="group",
        xaxis_title="activation",
        yaxis_title="validation accuracy (%)",
    )
    return fig


def networks_side_by_side(reports: list[StudyReport]) -> go.Figure:
    """The networks side by side: validation curves of each activation's best trial."""
    from plotly.subplots import make_subplots

    titles = [r.title for r in reports]
    fig = make_subplots(rows=1, cols=len(reports), subplot_titles=titles, shared_yaxes=True)
    for col, report in enumerate(reports, start=1):
        for activation, trial in sorted(report.best_by_activation().items()):
            values = _history(trial).get("val_acc") or []
            name = f"{report.model} {activation}"
            fig.add_trace(_curve(values, name, legendgroup=activation), row=1, col=col)
    names = " vs ".join(dict.fromkeys(network_title(r.model) for r in reports))
    fig.update_layout(title=f"{names}: validation accuracy per epoch")
    fig.update_yaxes(title_text="validation accuracy (%)", row=1, col=1)
    return fig


def build_figures(reports: list[StudyReport]) -> dict[str, go.Figure]:
    """All charts, keyed by file stem."""
    import warnings

    import optuna.visualization as vis

    figures: dict[str, go.Figure] = {}
    for report in reports:
        if not report.complete:
            continue
        study, stem = report.study, safe_name(report.name)  # file names stay inside --out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figures[f"{stem}_history"] = vis.plot_optimization_history(study)
            if len(report.complete) >= 2:
                figures[f"{stem}_importances"] = vis.plot_param_importances(study)
            figures[f"{stem}_parallel"] = vis.plot_parallel_coordinate(study)
            figures[f"{stem}_slice"] = vis.plot_slice(study)
            figures[f"{stem}_intermediate"] = _intermediate_figure(report)
        figures[f"{stem}_activations"] = comparison_figure(report)
    usable = [r for r in reports if r.complete]
    figures["activation_box"] = activation_box_figure(usable)
    if len({r.model for r in usable}) >= 2:  # any number of networks, in registry order
        rank = {name: i for i, name in enumerate(NETWORKS)}
        order = sorted(usable, key=lambda r: (rank.get(r.model, len(rank)), r.model, r.name))
        figures["networks_side_by_side"] = networks_side_by_side(order)
    return figures


def _intermediate_figure(report: StudyReport) -> go.Figure:
    """Validation accuracy per epoch of every trial, pruned ones dashed and grey."""
    import plotly.graph_objects as go
    from optuna.trial import TrialState

    fig = go.Figure()
    for t in report.study.get_trials(deepcopy=False):
        if not t.intermediate_values or t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[100 * t.intermediate_values[step] for step in steps],
                mode="lines",
                name=f"trial {t.number} ({'pruned' if pruned else 'complete'})",
                line={"dash": "dot", "color": "lightgrey"} if pruned else {},
                legendgroup=t.state.name,
            )
        )
    fig.update_layout(
        title=f"{report.name}: validation accuracy per epoch (pruned trials dotted)",
        xaxis_title="epoch",
        yaxis_title="validation accuracy (%)",
    )
    return fig


# --------------------------------------------------------------------------- writing


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _index_html(figures: dict[str, go.Figure], table_rows: list[dict[str, Any]]) -> str:
    import html

    cells = []
    for r in table_rows:
        val = "-" if r["val_acc"] is None else f"{100 * r['val_acc']:.2f}%"
        test = "-"
        if r["test_mean"] is not None:
            test = f"{100 * r['test_mean']:.2f}% &plusmn; {100 * r['test_std']:.2f}"
        cells.append(
            f"<tr><td>{html.escape(r['model'])}</td><td>{r['activation']}</td>"
            f"<td>{val}</td><td>{test}</td></tr>"
        )
    head = "\n".join(cells)
    divs = "\n".join(
        f'<section id="{html.escape(stem)}"><h2>{html.escape(stem)}</h2>'
        f"{fig.to_html(full_html=False, include_plotlyjs=False, div_id=f'fig-{stem}')}</section>"
        for stem, fig in figures.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>eegtune report</title>
<script src="plotly.min.js"></script>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head>
<body><h1>eegtune report</h1>
<table><tr><th>network</th><th>activation</th><th>best val acc</th>
<th>test acc (mean &plusmn; std)</th></tr>
{head}</table>
{divs}
</body></html>
"""


def write_report(reports: list[StudyReport], out: Path | str, top: int = 10) -> list[Path]:
    """Write CSV, JSON, one HTML file per figure, ``plotly.min.js`` and ``index.html``.

    Returns:
        The paths written.
    """
    from plotly.offline import get_plotlyjs

    out = Path(out)
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out / name, text)
        written.append(out / name)

    rows = [row for r in reports for row in r.rows(top)]
    put("best_trials.csv", _csv_text(rows))
    document = {
        "schema_version": SCHEMA_VERSION,
        "columns": list(COLUMNS),
        "studies": [
            {
                "study": r.name,
                "model": r.model,
                "states": r.states,
                "evaluation": r.evaluation,
                "best_trials": r.rows(top),
            }
            for r in reports
        ],
        "headline": headline(reports),
    }
    put("best_trials.json", json.dumps(document, indent=2))
    put("plotly.min.js", get_plotlyjs())
    figures = build_figures(reports)
    for stem, fig in figures.items():
        put(f"{stem}.html", fig.to_html(include_plotlyjs="plotly.min.js", full_html=True))
    put("index.html", _index_html(figures, headline(reports)))
    return written
