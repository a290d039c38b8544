"""PNG charts of the anonymous statistics, for admins, labelled in the admin's language.

They are drawn from `bot.figures.Figures`, whose counts are already suppressed: a count of 1 to 4 people is None,
and is drawn as "<5" at the baseline, never as a number (zero stays 0). Each chart is a fixed 800x500 px PNG,
large enough to read on a phone, in a palette readable with colour blindness (Okabe and Ito's).

Why matplotlib, and why only its object API: it renders headless with the Agg backend (no display, no browser,
no service to call), and a `Figure` built directly, with its own `FigureCanvasAgg`, keeps no global state, unlike
`pyplot`, so charts can be drawn in a worker thread while the bot keeps running. Nothing here imports pyplot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.figures import BUCKETS, Figures, Shown
from bot.i18n import Translator
from bot.texts import T
from flows.model import OUTCOMES

#: Every PNG is exactly WIDTH x HEIGHT pixels: FIGSIZE inches at DPI (and never bbox_inches="tight").
FIGSIZE = (8.0, 5.0)
DPI = 100

#: Point sizes: nothing smaller than 11 pt, so a chart reads at phone size.
TITLE_SIZE = 15
LABEL_SIZE = 12
TEXT_SIZE = 11

#: Okabe and Ito's colour-blind-safe palette.
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILLION = "#D55E00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
YELLOW = "#F0E442"
GREY = "#555555"

#: One colour per result, the same in every chart; results not listed here take the EXTRA colours in turn.
OUTCOME_COLOURS: dict[str, str] = {
    "likely_eligible": GREEN,
    "not_eligible": VERMILLION,
    "needs_review": ORANGE,
    "another_route": BLUE,
}
EXTRA_COLOURS = (SKY, PURPLE, YELLOW, GREY)

#: What a suppressed count (1 to 4 people) reads as.
FEW = "<5"

#: The trend chart labels at most this many weeks on its x axis, and writes the values when it has this few points.
MAX_WEEK_TICKS = 8
MAX_POINT_LABELS = 16


@dataclass(frozen=True)
class Chart:
    filename: str
    png: bytes
    title: str


def charts(figures: Figures, tr: Translator, lang: str) -> list[Chart]:
    """The four charts, in `lang`: how far people got, results by language, time to a first answer from staff,
    and people each week. Renders even with no data at all (empty axes under the title)."""
    suffix = figures.period.name
    drawn = [
        ("funnel", tr.text(lang, T.STATS_CHART_FUNNEL), _funnel),
        ("results", tr.text(lang, T.STATS_CHART_RESULTS), _results),
        ("handoff", tr.text(lang, T.STATS_CHART_HANDOFF), _handoff),
        ("trend", tr.text(lang, T.STATS_CHART_TREND), _trend),
    ]
    out = []
    for name, title, draw in drawn:
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.set_title(title, fontsize=TITLE_SIZE)
        draw(fig, ax, figures, tr, lang)
        out.append(Chart(filename=f"{name}-{suffix}.png", png=_png(fig), title=title))
    return out


def _funnel(fig: Figure, ax: Axes, figures: Figures, tr: Translator, lang: str) -> None:
    funnel = figures.funnel
    stages = [
        (T.STATS_STAGE_STARTED, funnel.started),
        (T.STATS_STAGE_PICKED, funnel.picked_language),
        (T.STATS_STAGE_CONSENTED, funnel.consented),
        (T.STATS_STAGE_FINISHED, funnel.finished),
    ]
    values = [value for _, value in stages]
    positions = list(range(len(stages)))
    ax.bar(positions, _heights(values), color=BLUE, width=0.6)
    ax.set_xticks(positions, [tr.text(lang, key) for key, _ in stages])
    _label_values(ax, positions, values)
    _count_axis(ax, values, tr.text(lang, T.STATS_AXIS_PEOPLE))


def _results(fig: Figure, ax: Axes, figures: Figures, tr: Translator, lang: str) -> None:
    by_language = figures.results_by_language
    languages = list(by_language)
    outcomes = list(OUTCOMES) + sorted({o for counts in by_language.values() for o in counts} - set(OUTCOMES))
    width = 0.8 / len(outcomes)
    every: list[Shown] = []
    for i, outcome in enumerate(outcomes):
        values = [by_language[language].get(outcome, 0) for language in languages]
        positions = [group - 0.4 + width * (i + 0.5) for group in range(len(languages))]
        label = tr.text(lang, f"result.label.{outcome}") if outcome in OUTCOMES else outcome
        ax.bar(positions, _heights(values), width=width * 0.95, color=_outcome_colour(outcome, outcomes), label=label)
        _label_values(ax, positions, values)
        every.extend(values)
    ax.set_xticks(range(len(languages)), [_language_name(tr, language) for language in languages])
    _count_axis(ax, every, tr.text(lang, T.STATS_AXIS_PEOPLE))
    if languages:
        fig.legend(loc="outside lower center", ncols=2, fontsize=TEXT_SIZE, frameon=False)


def _handoff(fig: Figure, ax: Axes, figures: Figures, tr: Translator, lang: str) -> None:
    buckets = figures.handoff.first_answer.buckets
    bounds = sorted(buckets)
    values = [buckets[bound] for bound in bounds]
    positions = list(range(len(bounds)))
    ax.bar(positions, _heights(values), color=SKY, edgecolor=BLUE, width=0.7)
    ax.set_xticks(positions, [_bucket_label(tr, lang, bound) for bound in bounds], rotation=30, ha="right")
    ax.set_xlabel(tr.text(lang, T.STATS_AXIS_WAITED), fontsize=LABEL_SIZE)
    _label_values(ax, positions, values)
    _count_axis(ax, values, tr.text(lang, T.STATS_AXIS_TICKETS))


def _trend(fig: Figure, ax: Axes, figures: Figures, tr: Translator, lang: str) -> None:
    weeks = list(figures.people_by_week)
    values = list(figures.people_by_week.values())
    positions = list(range(len(weeks)))
    # A suppressed week breaks the line (NaN) and reads "<5" at the baseline: it is not zero, nor a known number.
    points = [math.nan if value is None else float(value) for value in values]
    ax.plot(
        positions,
        points,
        color=BLUE,
        marker="o",
        linewidth=2.5,
        clip_on=False,
        label=tr.text(lang, T.STATS_TREND_PEOPLE),
    )
    for x, value in zip(positions, values, strict=True):
        if value is None:
            ax.annotate(FEW, (x, 0), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=TEXT_SIZE)
        elif len(values) <= MAX_POINT_LABELS:
            ax.annotate(
                str(value), (x, value), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=TEXT_SIZE
            )
    step = max(1, math.ceil(len(weeks) / MAX_WEEK_TICKS))
    ax.set_xticks(positions[::step], weeks[::step], rotation=30, ha="right")
    if weeks:
        ax.set_xlim(-0.5, len(weeks) - 0.5)
        ax.legend(loc="upper left", fontsize=TEXT_SIZE, frameon=False)
    ax.set_xlabel(tr.text(lang, T.STATS_AXIS_WEEK), fontsize=LABEL_SIZE)
    _count_axis(ax, values, tr.text(lang, T.STATS_AXIS_PEOPLE))


def _heights(values: Sequence[Shown]) -> list[int]:
    """Bar heights: a suppressed count is a bar of no height (its "<5" says the rest)."""
    return [0 if value is None else value for value in values]


def _label_values(ax: Axes, positions: Sequence[float], values: Sequence[Shown]) -> None:
    """Each count above its bar: the number, 0, or "<5" for a suppressed one."""
    for x, value in zip(positions, values, strict=True):
        text = FEW if value is None else str(value)
        height = 0 if value is None else value
        ax.annotate(text, (x, height), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=TEXT_SIZE)


def _count_axis(ax: Axes, values: Sequence[Shown], label: str) -> None:
    """A y axis of whole people from 0, with room above the tallest bar for its label (and for a "<5")."""
    top = max((value for value in values if value is not None), default=0)
    ax.set_ylim(0, max(top, 5) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(label, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TEXT_SIZE)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _bucket_label(tr: Translator, lang: str, bound: int) -> str:
    """A bucket by its upper bound: "15 min", "2 h", "1 d"; the last, which holds anything longer, "> 7 d"."""
    if bound == BUCKETS[-1] and len(BUCKETS) > 1:
        return f"> {_bucket_label(tr, lang, BUCKETS[-2])}"
    if bound % 86400 == 0:
        return tr.text(lang, T.STATS_UNIT_DAYS, n=bound // 86400)
    if bound % 3600 == 0:
        return tr.text(lang, T.STATS_UNIT_HOURS, n=bound // 3600)
    return tr.text(lang, T.STATS_UNIT_MINUTES, n=f"{bound / 60:g}")


def _language_name(tr: Translator, language: str) -> str:
    """A language in its own name ("Kreyòl ayisyen"), or its code if there is no catalog for it."""
    return tr.text(language, T.LANG_NAME) if language in tr.languages else language


def _outcome_colour(outcome: str, outcomes: Sequence[str]) -> str:
    if outcome in OUTCOME_COLOURS:
        return OUTCOME_COLOURS[outcome]
    extras = [o for o in outcomes if o not in OUTCOME_COLOURS]
    return EXTRA_COLOURS[extras.index(outcome) % len(EXTRA_COLOURS)]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" entry: the file does not say which matplotlib drew it.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
