"""Reports: tables of the best trials, CSV/JSON export, Plotly figures and an HTML index.

Reads studies; never trains. Every file is written to a temporary name and moved into place,
so an interrupted report leaves no half-written file. Charts work offline: ``plotly.min.js``
is written once beside them and referenced, never fetched from a CDN.

Export schema (``best_trials.csv`` columns; the JSON holds the same rows per study)::

    study, model, trial, value, activation, dropout, lr, batch_size, weight_decay,
    best_epoch, epochs_trained, duration_s, device, n_params, source

``value`` is the study's objective (a fraction; ``objective`` names it, for example
``smoothed``: the best mean validation accuracy over 3 consecutive epochs) of a completed
trial; ``source`` says where its configuration came from (``sampler``, ``portfolio N``: the
network's first design, ``lab's settings``, ``warm start from STUDY``). Rows are the top
``--top`` completed trials of each study, best first. In the JSON each row also has
``curves``: the trial's accuracy and loss per epoch (``train_acc``, ``val_acc``,
``train_loss``, ``val_loss``).
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eegtune.files import atomic_write_text, safe_name
from eegtune.names import network_title
from eegtune.results.charts import Chart, build_charts, compare_figure, fit_width
from eegtune.results.collect import StudyReport, headline, provenance, shared_references
from eegtune.results.compare import compare_activations, mean_gains
from eegtune.results.evaluate import Evaluation
from eegtune.results.images import write_images
from eegtune.results.lab import SETTING_TITLES, LabNetwork, lab_networks
from eegtune.results.text import (
    CLIPPED_NOTE,
    chance_text,
    headline_columns,
    headline_objective,
    interval_text,
    is_clipped,
    per_subject_text,
    percent_pm,
    reference_facts,
)
from eegtune.search.study import COLUMNS

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

    from eegtune.results.compare import Cell, Comparison
    from eegtune.results.references import ReferenceResult

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "build_figures",
    "write_report",
]

SCHEMA_VERSION = 6  # 2: "compare", ci95, per_subject; 3: data, classes, confusion, chance;
# 4: "objective" per study, "curves" per best trial, "curves" per evaluation (each seed);
# 5: "references" per study and in "compare"; 6: "source" per trial, "gains" in "compare"


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
table.lab td:nth-child(2){text-align:right}caption{text-align:left;font-weight:600;padding:.2em 0}
p.note{color:#555;font-size:.92em}
.chart{width:100%;min-height:450px}figcaption{color:#555;font-size:.92em;margin:.2em 0 1em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
"""


def _headline_html(rows: list[dict[str, Any]]) -> str:
    from html import escape

    head = "".join(f"<th>{escape(h)}</th>" for h in headline_columns(headline_objective(rows)))
    body = []
    for r in rows:
        first = f"<td>{escape(network_title(r['model']))} ({escape(r['study'])})</td>"
        first += f"<td>{escape(r['activation'])}</td>"
        if r["val_acc"] is None:
            why = f"no completed {escape(r['activation'])} trial: search longer or narrow the space"
            body.append(f'<tr>{first}<td class="empty" colspan="5">{why}</td></tr>')
            continue
        test = "not evaluated yet (run eegtune evaluate --per-activation)"
        source = r.get("source")
        shown = f" ({escape(source)})" if source and source != "sampler" else ""
        cells = f"<td>{100 * r['val_acc']:.2f}%</td><td>{r['trial']}{shown}</td>"
        if r["test_mean"] is not None:
            test = percent_pm(r["test_mean"], r["test_std"])
            cells += f"<td>{test}</td><td>{chance_text(r['chance'])}</td><td>{r['test_seeds']}</td>"
        else:
            cells += f'<td class="empty" colspan="3">{test}</td>'
        body.append(f"<tr>{first}{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def _classes_html(reports: list[StudyReport]) -> str:
    """Per evaluated configuration: accuracy per subject, confusion matrix, class accuracy."""
    from html import escape

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
                f"chance level {chance_text(e.chance)}"
                + (f"; per subject: {escape(per_subject_text(e))}" if e.per_subject else "")
                + f"</p><table><tr>{head}<th>class accuracy</th>"
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


def _compare_html(
    cells: list[Cell],
    comparisons: list[Comparison],
    chart: Chart,
    references: list[ReferenceResult],
) -> str:
    """The comparison's section: tuned vs baseline per cell and the references' rows, error
    bars, activation verdicts."""
    from html import escape

    subjects = any(c.tuned is not None and c.tuned.per_subject for c in cells)
    notes = any(c.reason for c in cells)
    columns = [
        "network",
        "activation",
        "tuned: test acc [95% CI]",
        "lab's settings: test acc [95% CI]",
        "tuned - lab's (points) [95% CI]",
        "chance",
    ]
    columns += ["per subject (tuned)"] if subjects else []
    columns += ["note"] if notes else []  # fmt: skip
    head = "".join(f"<th>{escape(h)}</th>" for h in columns)
    body = []
    for c in cells:
        tuned = "-" if c.tuned is None else interval_text(c.tuned.interval)
        base = "-" if c.baseline is None else interval_text(c.baseline.interval)
        diff = "-" if c.difference is None else interval_text(c.difference, signed=True)
        chance = chance_text(None if c.tuned is None else c.tuned.chance)
        row = (
            f"<tr><td>{escape(network_title(c.model))}</td><td>{escape(c.activation)}</td>"
            f"<td>{tuned}</td><td>{base}</td><td>{diff}</td><td>{chance}</td>"
        )
        if subjects:
            row += f"<td>{escape(per_subject_text(c.tuned))}</td>"
        if notes:
            row += f'<td class="empty">{escape(c.reason)}</td>'
        body.append(row + "</tr>")
    for r in references:
        tested = "-" if r.interval is None else interval_text(r.interval)
        row = (
            f'<tr class="reference"><td>reference</td><td>{escape(r.title)}</td>'
            f"<td>{tested}</td><td>-</td><td>-</td><td>{chance_text(r.chance)}</td>"
        )
        if subjects:
            row += f"<td>{escape(per_subject_text(r))}</td>"
        if notes:
            row += f'<td class="empty">{escape(r.reason)}</td>'
        body.append(row + "</tr>")
    clipped = any(is_clipped(e.interval) for c in cells for e in (c.tuned, c.baseline) if e)
    note = f'<p class="note">{escape(CLIPPED_NOTE)}</p>' if clipped else ""
    verdicts = "".join(f"<li>{escape(network_title(v.model))}: {escape(v.text)}</li>"
                       for v in comparisons)  # fmt: skip
    gains = "".join(f'<p class="gain">{escape(network_title(g.model))}: {escape(g.text)}</p>'
                    for g in mean_gains(cells))  # fmt: skip
    return (
        f"<h2>Tuned vs the lab's settings (test accuracy, mean and 95% CI over seeds)</h2>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>{note}{gains}"
        f"<h2>Which activation is best</h2><ul>{verdicts}</ul>" + _figure_html("compare", chart)
    )


def _references_html(references: list[ReferenceResult]) -> str:
    """The classical references: test accuracy with its interval over the test trials, per
    subject, band, window and time."""
    from html import escape

    if not references:
        return ""
    rows = "".join(
        f"<tr><td>{escape(r.title)}</td>"
        f"<td>{'-' if r.interval is None else interval_text(r.interval)}</td>"
        f"<td>{chance_text(r.chance)}</td><td>{r.n_test}</td>"
        f"<td>{escape(per_subject_text(r))}</td><td>{escape(reference_facts(r))}</td></tr>"
        for r in references
    )
    return (
        '<div id="references"><h2>Classical references</h2><p>How good is good on this data: '
        "CSP + LDA and Riemannian tangent space + logistic regression, band-passed to the mu "
        "and beta band, trained once on the same training set (their time window chosen by "
        "5-fold cross-validation there) and tested once on the same test set; the interval "
        "is a 95% Wilson interval over the test trials.</p><table><tr><th>reference</th>"
        "<th>test acc [95% CI]</th><th>chance</th><th>test trials</th><th>per subject</th>"
        f"<th>band, window, time</th></tr>{rows}</table></div>"
    )


def _lab_table_html(network: LabNetwork) -> str:
    """The lab's "highest testing accuracy" table of one network: settings x activation."""
    from html import escape

    head = "<th>settings</th>" + "".join(f"<th>{escape(a)}</th>" for a in network.activations)
    rows = []
    clipped = False
    for setting, by_activation in network.results.items():
        cells = []
        for activation in network.activations:
            e = by_activation.get(activation)
            cells.append("-" if e is None else f"{interval_text(e.interval)} ({len(e.seeds)})")
            clipped = clipped or (e is not None and is_clipped(e.interval))
        rows.append(
            f"<tr><td>{escape(SETTING_TITLES[setting])}</td>"
            + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )  # fmt: skip
    note = f" {escape(CLIPPED_NOTE)}." if clipped else ""
    return (
        f'<table class="lab"><caption>{escape(network_title(network.model))}: test accuracy, '
        f"mean [95% CI] over the evaluation seeds (their number in brackets)</caption>"
        f'<tr>{head}</tr>{"".join(rows)}</table><p class="note">The lab\'s table reports the '
        f"highest test accuracy over epochs, which picks the epoch on the test set; these are "
        f"the test accuracies of the epoch chosen on validation data.{note}</p>"
    )


def _figure_html(stem: str, chart: Chart, after: str = "") -> str:
    from html import escape

    figure = chart.figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{stem}",
        default_width="100%",
        config={"responsive": True, "displaylogo": False,
                "toImageButtonOptions": {"filename": stem, "scale": 2}},
    )  # fmt: skip
    return (
        f'<section id="{escape(stem)}"><h2>{escape(chart.title)}</h2><figure>{figure}'
        f"<figcaption>{escape(chart.caption)}</figcaption></figure>{after}</section>"
    )


def _index_html(
    charts: dict[str, Chart],
    rows: list[dict[str, Any]],
    facts: dict[str, str],
    compare_section: str = "",
    classes_section: str = "",
    beside: dict[str, str] | None = None,
) -> str:
    from html import escape

    beside = beside or {}
    lab = {stem: chart for stem, chart in charts.items() if stem in beside}
    lab_section = "\n".join(_figure_html(stem, chart, beside[stem]) for stem, chart in lab.items())
    sections = "\n".join(
        _figure_html(stem, chart) for stem, chart in charts.items() if stem not in lab
    )
    about = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>eegtune report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="plotly.min.js"></script><style>{_STYLE}</style></head>
<body><h1>eegtune report</h1>
{lab_section}
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


MANIFEST = ".eegtune-report.json"
"""The files the last report wrote into its folder, so that the next one can remove those
that no longer belong to it (and never a file eegtune did not write)."""


def write_report(
    reports: list[StudyReport],
    out: Path | str,
    top: int = 10,
    storage: str | None = None,
    compare: list[Cell] | None = None,
    images: tuple[str, ...] = (),
) -> list[Path]:
    """Write CSV, JSON, one HTML file per chart, ``plotly.min.js`` and ``index.html``.

    Args:
        reports: What :func:`collect` read.
        out: The folder; every file lands inside it, whatever the study names.
        top: Best trials exported per study.
        storage: The storage as it should be named on the page.
        compare: The cells of ``eegtune compare``: adds their table, the error-bar chart and
            the activation verdicts; the per-study charts give way to the lab's figures.
        images: Also save every chart as these static formats (``png``, ``svg``).

    Returns:
        The paths written. Files an earlier report wrote here that this one did not are
        removed.

    Raises:
        ExportError: ``images`` were asked for and cannot be made (nothing is written then).
    """
    from plotly.offline import get_plotlyjs

    out = Path(out)
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out / name, text)
        written.append(out / name)

    charts = build_charts(reports, per_study=None if compare is None else ())
    references = shared_references(reports)
    section = ""
    if compare is not None:
        chart = Chart(
            compare_figure(compare, references),
            "Test accuracy per network and activation: tuned vs the lab's settings",
            "Bars are the mean test accuracy over seeds, whiskers the 95% confidence interval "
            "(clipped to 0-100%, a * marks a clipped one); the dotted line is chance. Where "
            "the whiskers of a cell overlap, tuning did not clearly help."
            + (" Green bars are the classical references, trained once on the same data; "
               "their whiskers are 95% Wilson intervals over the test trials." if references
               else ""),
        )  # fmt: skip
        charts["compare"] = fit_width(chart)
        section = _compare_html(compare, compare_activations(compare), chart, references)
    section += _references_html(references)
    # Images first: when they cannot be made, nothing of the new report is written.
    written += write_images({stem: c.figure for stem, c in charts.items()}, out, images)
    rows = [row for r in reports for row in r.rows(top)]
    put("best_trials.csv", _csv_text(rows))
    document = {
        "schema_version": SCHEMA_VERSION,
        "columns": list(COLUMNS),
        "studies": [
            {
                "study": r.name,
                "model": r.model,
                "objective": r.objective,
                "data": r.source.attrs(),
                "classes": r.study.user_attrs.get("classes"),
                "states": r.states,
                "evaluation": r.evaluation,
                "references": [ref.to_dict() for ref in r.references],
                "best_trials": [
                    {**row, "curves": trial_curves(t)}
                    for row, t in zip(r.rows(top), r.complete[:top], strict=True)
                ],
            }
            for r in reports
        ],
        "headline": headline(reports),
        "compare": None
        if compare is None
        else {
            "cells": [c.to_dict() for c in compare],
            "comparisons": [v.to_dict() for v in compare_activations(compare)],
            "gains": [g.to_dict() for g in mean_gains(compare)],
            "references": [ref.to_dict() for ref in references],
        },
    }
    put("best_trials.json", json.dumps(document, indent=2))
    put("plotly.min.js", get_plotlyjs())
    for stem, chart in charts.items():
        page = chart.figure.to_html(
            include_plotlyjs="plotly.min.js", full_html=True, default_width="100%"
        )
        title = html.escape(chart.title)  # a study name is text, never markup
        put(f"{stem}.html", page.replace("<head>", f"<head><title>{title}</title>", 1))
    page_charts = {k: v for k, v in charts.items() if k != "compare"}
    beside = {f"lab_{safe_name(n.model)}": _lab_table_html(n) for n in lab_networks(reports)}
    facts = provenance(reports, storage)
    put(
        "index.html",
        _index_html(
            page_charts, headline(reports), facts, section, _classes_html(reports),
            {stem: table for stem, table in beside.items() if stem in page_charts},
        ),
    )  # fmt: skip
    _remove_stale(out, written)
    return written


def _remove_stale(out: Path, written: list[Path]) -> None:
    """Remove what the previous report in ``out`` wrote and this one did not; remember this
    one's files."""
    names = sorted({p.name for p in written})
    try:
        before = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        before = []
    for name in set(before) - set(names):
        if isinstance(name, str) and name == Path(name).name:  # a plain name inside out/
            (out / name).unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST, json.dumps({"files": names}, indent=1))


def trial_curves(trial: FrozenTrial) -> dict[str, list[float]]:
    """A trial's learning curves as the search recorded them (accuracy and loss per epoch)."""
    history = trial.user_attrs.get("history") or {}
    return {key: list(values) for key, values in history.items()}


def build_figures(reports: list[StudyReport]) -> dict[str, go.Figure]:
    """The report's Plotly figures keyed by file stem (see :func:`.charts.build_charts`)."""
    return {stem: chart.figure for stem, chart in build_charts(reports).items()}
