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
import html
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.charts import Chart, build_charts, compare_figure
from eegtune.errors import EegtuneError
from eegtune.files import atomic_write_text
from eegtune.names import ACTIVATIONS, LAB_DATASET, network_title
from eegtune.study import COLUMNS, best_by_activation, completed_trials, load_evaluation, trial_row

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from eegtune.compare import Cell, Comparison
    from eegtune.sources import DataSource

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

SCHEMA_VERSION = 3  # 2: "compare", ci95, per_subject; 3: data, classes, confusion, chance


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
    def activations(self) -> list[str]:
        """The activations this study searched: one for a cell of ``compare``, else all."""
        fixed = self.study.user_attrs.get("activation")
        return [str(fixed)] if fixed else list(ACTIVATIONS)

    @property
    def title(self) -> str:
        return f"{network_title(self.model)} ({self.name})"

    @property
    def source(self) -> DataSource:
        """The dataset, subjects and preprocessing the study was searched on."""
        from eegtune.sources import DataSource

        return DataSource.from_attrs(self.study.user_attrs, LAB_DATASET)

    @property
    def classes_text(self) -> str:
        """``0 = left_hand, 1 = right_hand``: the study's label mapping."""
        classes = self.study.user_attrs.get("classes") or []
        return ", ".join(f"{i} = {name}" for i, name in enumerate(classes)) or "not recorded"


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
                evaluation=load_evaluation(storage, study),
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
        for activation in report.activations:
            trial = best.get(activation)
            evaluation = report.evaluation.get(activation)
            for label in ("best", "tuned"):  # evaluate's overall best, compare's tuned one
                overall = report.evaluation.get(label)
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
                    "chance": evaluation.get("chance") if evaluation else None,
                }
            )
    return rows


# --------------------------------------------------------------------------- writing


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1.5em;max-width:1200px;color:#222}
h1{margin-top:0}h2{margin:1.6em 0 .2em;font-size:1.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px}
td{text-align:right}td:nth-child(-n+2){text-align:left}td.empty{color:#888;font-style:italic;text-align:left}
.chart{width:100%;min-height:450px}figcaption{color:#555;font-size:.92em;margin:.2em 0 1em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
"""


def _headline_html(rows: list[dict[str, Any]]) -> str:
    from html import escape

    from eegtune.console import HEADLINE_COLUMNS, chance_text

    head = "".join(f"<th>{h}</th>" for h in HEADLINE_COLUMNS)
    body = []
    for r in rows:
        first = f"<td>{escape(network_title(r['model']))} ({escape(r['study'])})</td>"
        first += f"<td>{escape(r['activation'])}</td>"
        if r["val_acc"] is None:
            why = f"no completed {escape(r['activation'])} trial: search longer or narrow the space"
            body.append(f'<tr>{first}<td class="empty" colspan="5">{why}</td></tr>')
            continue
        test = "not evaluated yet (run eegtune evaluate --per-activation)"
        cells = f"<td>{100 * r['val_acc']:.2f}%</td><td>{r['trial']}</td>"
        if r["test_mean"] is not None:
            test = f"{100 * r['test_mean']:.2f}% ± {100 * (r['test_std'] or 0.0):.2f}"
            cells += f"<td>{test}</td><td>{chance_text(r['chance'])}</td><td>{r['test_seeds']}</td>"
        else:
            cells += f'<td class="empty" colspan="3">{test}</td>'
        body.append(f"<tr>{first}{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def _classes_html(reports: list[StudyReport]) -> str:
    """Per evaluated configuration: accuracy per subject, confusion matrix, class accuracy."""
    from html import escape

    from eegtune.console import chance_text, per_subject_text
    from eegtune.evaluate import Evaluation

    blocks = []
    for report in reports:
        for label, stored in report.evaluation.items():
            e = Evaluation.from_dict(stored)
            if not e.confusion:
                continue  # evaluated before confusion matrices were kept
            head = "".join(f"<th>{escape(c)}</th>" for c in ["true class", *e.classes])
            per_class = e.per_class
            rows = "".join(
                f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{n}</td>" for n in row)
                + f"<td>{100 * per_class.get(name, 0.0):.1f}%</td></tr>"
                for name, row in zip(e.classes, e.confusion, strict=True)
            )  # fmt: skip
            blocks.append(
                f"<h3>{escape(report.title)}, {escape(label)} ({escape(e.params['activation'])})"
                f"</h3><p>test accuracy {100 * e.mean:.2f}% over {len(e.seeds)} seed(s); "
                f"chance level {chance_text(e.chance)}; per subject: "
                f"{escape(per_subject_text(e))}</p><table><tr>{head}<th>class accuracy</th>"
                f"</tr>{rows}</table>"
            )
    if not blocks:
        return ""
    return (
        '<div id="classes"><h2>Test predictions per class and per subject</h2><p>Confusion '
        "matrices count the test trials of every seed: rows are the true class, columns the "
        "predicted one; class accuracy is the share of a class's trials predicted right.</p>"
        + "".join(blocks) + "</div>"
    )  # fmt: skip


def provenance(reports: list[StudyReport], storage: str | None) -> dict[str, str]:
    """How the numbers were obtained: storage, studies, split, seeds, software versions."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    splits = sorted(
        {
            f"seed {r.study.user_attrs.get('split_seed')}, "
            f"{100 * float(r.study.user_attrs.get('val_fraction') or 0):.0f}% of training set"
            for r in reports
        }
    )
    seeds = sorted({len(e.get("test_acc", [])) for r in reports for e in r.evaluation.values()})
    return {
        "storage": storage or "-",
        "studies": "; ".join(f"{r.name} ({r.model} on {r.source.describe()})" for r in reports),
        "classes": "; ".join(sorted({r.classes_text for r in reports})),
        "validation split": "; ".join(splits),
        "test seeds per configuration": ", ".join(map(str, seeds)) or "not evaluated",
        "software": f"eegtune {installed('eegtune')}, torch {installed('torch')}, "
        f"optuna {installed('optuna')}",
    }  # fmt: skip


def _compare_html(cells: list[Cell], comparisons: list[Comparison], chart: Chart) -> str:
    """The comparison's section: tuned vs baseline per cell, error bars, activation verdicts."""
    from html import escape

    from eegtune.console import chance_text, interval_text, per_subject_text

    head = "".join(
        f"<th>{h}</th>"
        for h in ("network", "activation", "tuned test acc", "baseline test acc",
                  "tuned - baseline", "chance", "per subject (tuned)", "note")
    )  # fmt: skip
    body = []
    for c in cells:
        tuned = "-" if c.tuned is None else interval_text(c.tuned.interval)
        base = "-" if c.baseline is None else interval_text(c.baseline.interval)
        diff = "-" if c.difference is None else interval_text(c.difference, signed=True)
        subjects = per_subject_text(c.tuned)
        chance = chance_text(None if c.tuned is None else c.tuned.chance)
        body.append(
            f"<tr><td>{escape(network_title(c.model))}</td><td>{escape(c.activation)}</td>"
            f"<td>{tuned}</td><td>{base}</td><td>{diff}</td><td>{chance}</td>"
            f"<td>{escape(subjects)}</td>"
            f'<td class="empty">{escape(c.reason)}</td></tr>'
        )
    verdicts = "".join(f"<li>{escape(network_title(v.model))}: {escape(v.text)}</li>"
                       for v in comparisons)  # fmt: skip
    figure = chart.figure.to_html(
        full_html=False, include_plotlyjs=False, div_id="fig-compare", default_width="100%",
        config={"responsive": True, "displaylogo": False},
    )  # fmt: skip
    return (
        f"<h2>Tuned vs the lab's settings (test accuracy, mean and 95% CI over seeds)</h2>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
        f"<h2>Which activation is best</h2><ul>{verdicts}</ul>"
        f'<section id="compare"><h2>{escape(chart.title)}</h2><figure>{figure}'
        f"<figcaption>{escape(chart.caption)}</figcaption></figure></section>"
    )


def _index_html(
    charts: dict[str, Chart],
    rows: list[dict[str, Any]],
    facts: dict[str, str],
    compare_section: str = "",
    classes_section: str = "",
) -> str:
    from html import escape

    sections = "\n".join(
        f'<section id="{escape(stem)}"><h2>{escape(chart.title)}</h2><figure>'
        + chart.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{stem}",
            default_width="100%",
            config={"responsive": True, "displaylogo": False},
        )
        + f"<figcaption>{escape(chart.caption)}</figcaption></figure></section>"
        for stem, chart in charts.items()
    )
    about = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>eegtune report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="plotly.min.js"></script><style>{_STYLE}</style></head>
<body><h1>eegtune report</h1>
{compare_section}
<h2>Best accuracy per network and activation</h2>
{_headline_html(rows)}
<p>Validation accuracy chose the configurations; test accuracy was measured once per seed
after that, by <code>eegtune evaluate</code>. Chance is the test accuracy of always answering
the most frequent class.</p>
{classes_section}
{sections}
<h2>How this was obtained</h2><dl>{about}</dl>
</body></html>
"""


def write_report(
    reports: list[StudyReport],
    out: Path | str,
    top: int = 10,
    storage: str | None = None,
    compare: list[Cell] | None = None,
) -> list[Path]:
    """Write CSV, JSON, one HTML file per chart, ``plotly.min.js`` and ``index.html``.

    Args:
        reports: What :func:`collect` read.
        out: The folder; every file lands inside it, whatever the study names.
        top: Best trials exported per study.
        storage: The storage as it should be named on the page.
        compare: The cells of ``eegtune compare``: adds their table, the error-bar chart and
            the activation verdicts, and keeps only the accuracy-per-epoch chart per study.

    Returns:
        The paths written.
    """
    from plotly.offline import get_plotlyjs

    from eegtune.compare import compare_activations

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
                "data": r.source.attrs(),
                "classes": r.study.user_attrs.get("classes"),
                "states": r.states,
                "evaluation": r.evaluation,
                "best_trials": r.rows(top),
            }
            for r in reports
        ],
        "headline": headline(reports),
        "compare": None
        if compare is None
        else {
            "cells": [c.to_dict() for c in compare],
            "comparisons": [v.to_dict() for v in compare_activations(compare)],
        },
    }
    put("best_trials.json", json.dumps(document, indent=2))
    put("plotly.min.js", get_plotlyjs())
    charts = build_charts(reports, per_study=None if compare is None else ("activations",))
    section = ""
    if compare is not None:
        chart = Chart(
            compare_figure(compare),
            "Test accuracy per cell: tuned vs the lab's settings",
            "Bars are the mean test accuracy over seeds, whiskers the 95% confidence interval; "
            "where the whiskers of a cell overlap, tuning did not clearly help.",
        )
        charts["compare"] = chart
        section = _compare_html(compare, compare_activations(compare), chart)
    for stem, chart in charts.items():
        page = chart.figure.to_html(
            include_plotlyjs="plotly.min.js", full_html=True, default_width="100%"
        )
        title = html.escape(chart.title)  # a study name is text, never markup
        put(f"{stem}.html", page.replace("<head>", f"<head><title>{title}</title>", 1))
    page_charts = {k: v for k, v in charts.items() if k != "compare"}
    facts = provenance(reports, storage)
    put(
        "index.html",
        _index_html(page_charts, headline(reports), facts, section, _classes_html(reports)),
    )
    return written


def build_figures(reports: list[StudyReport]) -> dict[str, go.Figure]:
    """The report's Plotly figures keyed by file stem (see :func:`eegtune.charts.build_charts`)."""
    return {stem: chart.figure for stem, chart in build_charts(reports).items()}
