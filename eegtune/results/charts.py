"""The report's charts: Plotly figures with a human title and a one-line caption each.

Accuracy is shown in percent everywhere. Each activation keeps one hue across the charts: its
training curve dashed, its validation curve solid.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eegtune.files import safe_name
from eegtune.names import ACTIVATIONS, NETWORKS, network_title, objective_title
from eegtune.results.lab import Curve, LabNetwork, lab_networks, mean_curve

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

    from eegtune.results.collect import StudyReport
    from eegtune.results.compare import Cell
    from eegtune.results.references import ReferenceResult

__all__ = [
    "Chart",
    "activation_colour",
    "build_charts",
    "compare_figure",
    "fit_width",
    "lab_figure",
]

ACCURACY = "validation accuracy (%)"
MIN_TRIALS_FOR_IMPORTANCE = 10  # fANOVA on fewer completed trials ranks noise
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Chart:
    """A figure, the heading it gets in ``index.html`` and a sentence on what to read from it."""

    figure: go.Figure
    title: str
    caption: str


def activation_colour(activation: str) -> str:
    """The hue of an activation in every chart (registry order picks it)."""
    order = list(ACTIVATIONS)
    index = order.index(activation) if activation in order else len(order)
    return _PALETTE[index % len(_PALETTE)]


def _history(trial: FrozenTrial) -> dict[str, list[float]]:
    return trial.user_attrs.get("history") or {}


def _curve(values: list[float], name: str, **style: Any) -> go.Scatter:
    """An accuracy-per-epoch line (fractions shown as percent, epochs from 1)."""
    import plotly.graph_objects as go

    epochs = list(range(1, len(values) + 1))
    return go.Scatter(x=epochs, y=[100 * v for v in values], mode="lines", name=name, **style)


def fit_width(chart: Chart) -> Chart:
    """Let a chart's figure take the width of its page (Optuna's slice plot fixes 1500 px) and
    carry the chart's title (not Optuna's), so that a PNG or SVG of it is complete on its own."""
    fig, title = chart.figure, chart.title
    fig.update_layout(
        width=None,
        autosize=True,
        title={"text": html.escape(title), "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        margin={"l": 60, "r": 30, "t": 60, "b": 50},
    )
    return chart


def _chance_line(fig: go.Figure, chance: float | None) -> None:
    """A dotted line at the chance level, named in the legend (a label on the plot would
    cover a bar or a curve)."""
    import plotly.graph_objects as go

    if chance:
        line = {"dash": "dot", "color": "#555", "width": 1.5}
        fig.add_hline(y=100 * chance, line=line)
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="lines", line=line, name=f"chance {100 * chance:.1f}%"
            )  # fmt: skip
        )


def _band(curve: Curve, colour: str, group: str, **where: int) -> list[go.Scatter]:
    """The 95% band of a mean curve as a filled area (nothing with one seed)."""
    import plotly.graph_objects as go

    if curve.low is None or curve.high is None:
        return []
    epochs = list(range(1, len(curve.mean) + 1))
    return [
        go.Scatter(
            x=epochs + epochs[::-1],
            y=[100 * v for v in curve.high] + [100 * v for v in curve.low][::-1],
            mode="lines", fill="toself", fillcolor=colour, opacity=0.12, line={"width": 0},
            hoverinfo="skip", showlegend=False, legendgroup=group,
        )
    ]  # fmt: skip


def _note_figure(text: str) -> go.Figure:
    """A figure that says, in words, why it shows nothing."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"size": 14, "color": "#555"})  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=200)
    return fig


def lab_figure(network: LabNetwork, setting: str = "tuned") -> go.Figure:
    """The lab's figure for one network: train (dashed) and test (solid) accuracy per epoch of
    each activation's final retrain, mean over the evaluation seeds with a 95% band."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for activation in network.activations:
        evaluation = network.get(setting, activation)
        if evaluation is None:
            continue
        colour = activation_colour(activation)
        for key, dash, part in (("train_acc", "dash", "train"), ("test_acc", "solid", "test")):
            curve = mean_curve(evaluation, key)
            if curve is None:
                continue
            for band in _band(curve, colour, activation):
                fig.add_trace(band)
            fig.add_trace(
                _curve(
                    curve.mean,
                    f"{activation} {part}",
                    line={"dash": dash, "color": colour},
                    legendgroup=activation,
                )  # fmt: skip
            )
    _chance_line(fig, network.chance)
    fig.update_layout(xaxis_title="epoch", yaxis_title="accuracy (%)", legend_title="curve")
    fig.update_yaxes(range=[0, 100])
    longest = max((len(t.x) for t in fig.data if t.x is not None and t.fill is None), default=0)
    if longest <= 10:  # whole epochs only, not 1.2, 1.4, ...
        fig.update_xaxes(tick0=1, dtick=1)
    return fig


def comparison_figure(report: StudyReport) -> go.Figure:
    """The lab's figure: train and val accuracy per epoch of the best trial of each activation."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for activation, trial in sorted(report.best_by_activation().items()):
        history, colour = _history(trial), activation_colour(activation)
        for key, dash, part in (("train_acc", "dash", "train"), ("val_acc", "solid", "val")):
            line = {"dash": dash, "color": colour}
            fig.add_trace(
                _curve(
                    history.get(key) or [],
                    f"{activation} {part}",
                    line=line,
                    legendgroup=activation,
                )
            )
    fig.update_layout(xaxis_title="epoch", yaxis_title="accuracy (%)")
    return fig


def activation_box_figure(reports: list[StudyReport]) -> go.Figure:
    """Validation accuracy of every completed trial by activation, one box per network.

    A network-activation cell without a completed trial is named on the chart, not dropped.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    empty = []
    for report in reports:
        fig.add_trace(
            go.Box(
                x=[t.params.get("activation") for t in report.complete],
                y=[100 * (t.value or 0.0) for t in report.complete],
                name=report.title,
                boxpoints="all",
            )
        )
        tried = {str(t.params.get("activation")) for t in report.complete}
        empty += [
            f"{report.title}: no completed {a} trial" for a in report.activations if a not in tried
        ]
    fig.update_layout(boxmode="group", xaxis_title="activation", yaxis_title=ACCURACY)
    fig.update_xaxes(  # every activation keeps its place, with or without trials
        categoryorder="array", categoryarray=list(ACTIVATIONS), range=[-0.5, len(ACTIVATIONS) - 0.5]
    )
    if empty:
        fig.add_annotation(
            text="<br>".join(empty), xref="paper", yref="paper", x=0.0, y=1.08,
            showarrow=False, align="left", font={"size": 11, "color": "#a33"},
        )  # fmt: skip
    return fig


def networks_side_by_side(reports: list[StudyReport]) -> go.Figure:
    """The networks side by side: validation curves of each activation's best trial."""
    from plotly.subplots import make_subplots

    titles = [r.title for r in reports]
    fig = make_subplots(rows=1, cols=len(reports), subplot_titles=titles, shared_yaxes=True)
    for col, report in enumerate(reports, start=1):
        for activation, trial in sorted(report.best_by_activation().items()):
            values = _history(trial).get("val_acc") or []
            style = {"color": activation_colour(activation)}
            fig.add_trace(
                _curve(values, activation, line=style, legendgroup=activation, showlegend=col == 1),
                row=1,
                col=col,
            )
    fig.update_yaxes(title_text=ACCURACY, row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    return fig


def intermediate_figure(report: StudyReport) -> go.Figure:
    """Validation accuracy per epoch of every trial, pruned ones dotted and grey."""
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
    fig.update_layout(xaxis_title="epoch", yaxis_title=ACCURACY)
    return fig


def _percent(trial: FrozenTrial) -> float:
    return 100 * (trial.value or 0.0)


def _in_percent(fig: go.Figure, objective: str) -> go.Figure:
    """Optuna's history plot in percent (its ``target`` option would drop the best-so-far
    line, so the values are scaled here instead), its legend named after what it shows."""
    names = {"Objective Value": f"trial's {objective}", "Best Value": "best so far"}
    for trace in fig.data:
        if trace.y is not None:
            trace.y = [None if v is None else 100 * v for v in trace.y]
        if trace.name in names:
            trace.name = names[trace.name]
    fig.update_yaxes(title_text=f"{objective} (%)")
    return fig


def _readable_log_axes(fig: go.Figure) -> go.Figure:
    """Log axes (lr, weight decay) with one labelled tick per power of ten, not a crowd."""
    fig.for_each_xaxis(lambda a: a.update(dtick=1, exponentformat="power") if a.type == "log"
                       else None)  # fmt: skip
    fig.for_each_yaxis(lambda a: a.update(dtick=1, exponentformat="power") if a.type == "log"
                       else None)  # fmt: skip
    return fig


def compare_figure(cells: list[Cell], references: Sequence[ReferenceResult] = ()) -> go.Figure:
    """Tuned vs baseline test accuracy per cell: bars from 0 with the chance level drawn,
    whiskers the 95% confidence interval clipped to 0-100% (a clipped end is marked). The
    classical references are bars of their own, labelled as references, whiskers their
    interval over the test trials."""
    import plotly.graph_objects as go

    fig = go.Figure()
    any_clipped = False
    for kind, colour in (("tuned", "#1f77b4"), ("baseline", "#999999")):
        x, y, err, err_minus, text = [], [], [], [], []
        for cell in cells:
            evaluation = getattr(cell, kind)
            if evaluation is None:
                continue
            ci = evaluation.interval
            x.append(f"{network_title(cell.model)} {cell.activation}")
            y.append(100 * ci.mean)
            clipped = False
            if ci.low is None or ci.high is None:
                err.append(0.0)
                err_minus.append(0.0)
            else:
                low, high = max(0.0, ci.low), min(1.0, ci.high)
                err.append(100 * (high - ci.mean))
                err_minus.append(100 * (ci.mean - low))
                clipped = low != ci.low or high != ci.high
            any_clipped = any_clipped or clipped
            text.append(f"{100 * ci.mean:.1f}%" + ("*" if clipped else ""))
        label = "tuned settings" if kind == "tuned" else "the lab's settings"
        fig.add_trace(
            go.Bar(
                x=x, y=y, name=label, marker_color=colour, text=text, textposition="inside",
                insidetextanchor="start",
                error_y={"type": "data", "array": err, "arrayminus": err_minus, "visible": True},
            )
        )  # fmt: skip
    tested = [(r.title, r.interval) for r in references if r.interval is not None]
    if tested:  # a Wilson interval lies within 0-100%: nothing to clip
        fig.add_trace(
            go.Bar(
                x=[f"reference: {title}" for title, _ in tested],
                y=[100 * ci.mean for _, ci in tested], marker_color="#2ca02c",
                name="classical references (one fit)", textposition="inside",
                width=0.4, offset=-0.2,  # centred on its own category, not in a group slot
                text=[f"{100 * ci.mean:.1f}%" for _, ci in tested], insidetextanchor="start",
                error_y={
                    "type": "data", "visible": True,
                    "array": [100 * ((ci.high or ci.mean) - ci.mean) for _, ci in tested],
                    "arrayminus": [100 * (ci.mean - (ci.low or ci.mean)) for _, ci in tested],
                },
            )
        )  # fmt: skip
    if any_clipped:
        fig.add_annotation(
            text="* its 95% CI ran past 0-100% and is clipped there", xref="paper", yref="paper",
            x=1.0, y=-0.16, xanchor="right", showarrow=False, font={"size": 11, "color": "#a33"},
        )  # fmt: skip
    chances = [e.chance for c in cells for e in (c.tuned, c.baseline) if e and e.chance]
    _chance_line(fig, max(chances) if chances else None)
    fig.update_layout(
        barmode="group", yaxis_title="test accuracy (%)", xaxis_title="network and activation",
        legend_title="configuration",
    )  # fmt: skip
    fig.update_yaxes(range=[0, 100])
    return fig


def build_charts(
    reports: list[StudyReport], per_study: tuple[str, ...] | None = None
) -> dict[str, Chart]:
    """Every chart of a report, keyed by its file stem (safe for any study name).

    ``per_study`` limits the charts made for each study to those kinds (``activations``,
    ``history`` ...); the comparison across studies is always made.
    """
    import optuna.visualization as vis

    charts: dict[str, Chart] = {}
    for report in reports:
        if not report.complete:
            continue
        study, stem, who = report.study, safe_name(report.name), report.title
        score = objective_title(report.objective)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            charts[f"{stem}_activations"] = Chart(
                comparison_figure(report),
                f"{who}: accuracy per epoch of each activation's best trial",
                "Dashed: training accuracy, solid: validation accuracy, one colour per "
                "activation; a widening gap between them is overfitting.",
            )
            charts[f"{stem}_history"] = Chart(
                _in_percent(vis.plot_optimization_history(study), score),
                f"{who}: search history",
                "Each dot is a completed trial; the line is the best validation accuracy so far, "
                "so a flat line late in the search means more trials would add little.",
            )
            charts[f"{stem}_intermediate"] = Chart(
                intermediate_figure(report),
                f"{who}: validation accuracy per epoch of every trial",
                "Pruned trials are dotted grey: they were stopped early because they trailed "
                "the others at the same epoch.",
            )
            if len(report.complete) >= MIN_TRIALS_FOR_IMPORTANCE:
                charts[f"{stem}_importances"] = Chart(
                    vis.plot_param_importances(study),
                    f"{who}: which hyperparameters mattered",
                    "The share of the variation in validation accuracy each hyperparameter "
                    "explains (fANOVA); tune the top ones first.",
                )
            else:
                charts[f"{stem}_importances"] = Chart(
                    _note_figure(
                        f"{len(report.complete)} completed trial(s): hyperparameter importances "
                        f"need at least {MIN_TRIALS_FOR_IMPORTANCE}, so none are drawn"
                    ),
                    f"{who}: which hyperparameters mattered",
                    "Importances estimated from a handful of trials are noise; search longer "
                    "to see them.",
                )
            charts[f"{stem}_parallel"] = Chart(
                vis.plot_parallel_coordinate(study, target=_percent, target_name=f"{score} (%)"),
                f"{who}: hyperparameters of every completed trial",
                "Each line is a trial, coloured by validation accuracy: follow the bright lines "
                "to see which settings go together.",
            )
            charts[f"{stem}_slice"] = Chart(
                _readable_log_axes(
                    vis.plot_slice(study, target=_percent, target_name=f"{score} (%)")
                ),
                f"{who}: validation accuracy against each hyperparameter",
                "One panel per hyperparameter; darker dots are later trials, so clusters show "
                "where the search converged.",
            )
    if per_study is not None:
        keep = {f"{safe_name(r.name)}_{kind}" for r in reports for kind in per_study}
        charts = {stem: chart for stem, chart in charts.items() if stem in keep}
    usable = [r for r in reports if r.complete]
    charts["activation_box"] = Chart(
        activation_box_figure(usable),
        "Validation accuracy by activation and network",
        "Every completed trial as a dot; the box spans the middle half. An activation whose "
        "box sits higher did better across the settings tried, not just at the best one.",
    )
    if len({r.model for r in usable}) >= 2:  # any number of networks, in registry order
        rank = {name: i for i, name in enumerate(NETWORKS)}
        order = sorted(usable, key=lambda r: (rank.get(r.model, len(rank)), r.model, r.name))
        names = " vs ".join(dict.fromkeys(network_title(r.model) for r in order))
        charts["networks_side_by_side"] = Chart(
            networks_side_by_side(order),
            f"{names}: validation accuracy per epoch",
            "The best trial of each activation per network, on one accuracy scale.",
        )
    for network in lab_networks(reports):
        if any(c for e in network.results.get("tuned", {}).values() for c in e.curves):
            charts[f"lab_{safe_name(network.model)}"] = Chart(
                lab_figure(network),
                f"{network_title(network.model)}: train and test accuracy per epoch of each "
                "activation (tuned settings)",
                "Dashed: training accuracy, solid: test accuracy of the final retrain, one colour "
                "per activation; lines are the mean over the evaluation seeds, bands their 95% "
                "confidence interval. The test curve was recorded for this figure only: the "
                "configuration and its epoch count were chosen on validation data before it "
                "was measured, and the reported test accuracy is its last epoch.",
            )
    return {stem: fit_width(chart) for stem, chart in charts.items()}
