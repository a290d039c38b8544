"""The admins' PNG charts: four of them, each a valid 800x500 PNG titled in the admin's language, with or without
data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import struct

import pytest
from PIL import Image

from bot.app import Core
from bot.charts import Chart, _bucket_label, charts
from bot.figures import BUCKETS, Duration, Figures, Funnel, HandoffFigures, Period, Shown
from bot.i18n import Translator
from bot.texts import T

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TITLES = (T.STATS_CHART_FUNNEL, T.STATS_CHART_RESULTS, T.STATS_CHART_HANDOFF, T.STATS_CHART_TREND)


def _duration(buckets: dict[int, Shown]) -> Duration:
    return Duration(median=None, p90=None, measured=None, buckets=buckets)


def _figures(*, empty: bool = False) -> Figures:
    period = Period(name="30d", since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 30))
    if empty:
        funnel = Funnel(started=0, picked_language=0, declined=0, consented=0, finished=0)
        by_language: dict[str, dict[str, Shown]] = {}
        buckets: dict[int, Shown] = {}
        weeks: dict[str, Shown] = {}
    else:
        funnel = Funnel(started=120, picked_language=97, declined=None, consented=64, finished=None)
        by_language = {
            "es": {"likely_eligible": 31, "not_eligible": 12, "needs_review": None, "another_route": 0},
            "ht": {"likely_eligible": 9, "not_eligible": None, "needs_review": 0, "another_route": 5},
            "en": {"likely_eligible": None, "not_eligible": 0},
        }
        buckets = dict.fromkeys(BUCKETS, 0)
        buckets.update({300: 7, 900: 12, 3600: None, 86400: 5, BUCKETS[-1]: None})
        weeks = {"2026-W45": 14, "2026-W46": None, "2026-W47": 0, "2026-W48": 23}
    handoff = HandoffFigures(
        opened=None, first_answer=_duration(buckets), to_close=_duration({}), waiting_now=0, by_hour={}
    )
    return Figures(
        period=period,
        program="",
        funnel=funnel,
        results={},
        results_by_language=by_language,
        results_by_nationality={},
        results_by_location={},
        reasons=[],
        dropoff=[],
        referrals=[],
        handoff=handoff,
        broadcasts=[],
        stopped={},
        resubscribed={},
        people_by_day={},
        people_by_week=weeks,
    )


@pytest.fixture
def tr(core: Core) -> Translator:
    return core.translator


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _assert_valid(chart: Chart) -> None:
    assert _size(chart.png) == (800, 500)
    with Image.open(io.BytesIO(chart.png)) as image:
        image.verify()
    with Image.open(io.BytesIO(chart.png)) as image:
        assert image.format == "PNG"
        assert image.size == (800, 500)
        # Something was drawn: not a blank page of one colour.
        extrema = image.convert("L").getextrema()
        assert extrema[0] < extrema[1]


@pytest.mark.parametrize("empty", [False, True], ids=["data", "empty"])
def test_four_valid_pngs(tr: Translator, empty: bool) -> None:
    drawn = charts(_figures(empty=empty), tr, "es")
    assert len(drawn) == 4
    for chart in drawn:
        _assert_valid(chart)
    names = [chart.filename for chart in drawn]
    assert len(set(names)) == 4
    assert all(name.endswith(".png") for name in names)


def test_titles_in_the_language_asked(tr: Translator) -> None:
    figures = _figures()
    spanish = charts(figures, tr, "es")
    english = charts(figures, tr, "en")
    creole = charts(figures, tr, "ht")
    assert [chart.title for chart in spanish] == [tr.text("es", key) for key in TITLES]
    assert [chart.title for chart in english] == [tr.text("en", key) for key in TITLES]
    assert all(es.title != en.title for es, en in zip(spanish, english, strict=True))
    assert creole[0].title == tr.text("ht", T.STATS_CHART_FUNNEL)
    assert creole[0].title != spanish[0].title
    # The language changes the picture too, not only the title: the labels are drawn in it.
    assert spanish[0].png != english[0].png
    # The filenames do not depend on the language.
    assert [chart.filename for chart in spanish] == [chart.filename for chart in english]


def test_suppressed_counts_change_the_picture(tr: Translator) -> None:
    """A suppressed count is drawn ("<5"), not left out, and not drawn as a zero."""
    base = _figures()
    zero = Funnel(started=120, picked_language=97, declined=None, consented=64, finished=0)
    with_zero = dataclasses.replace(base, funnel=zero)
    assert charts(base, tr, "en")[0].png != charts(with_zero, tr, "en")[0].png


def test_same_figures_same_bytes(tr: Translator) -> None:
    figures = _figures()
    assert [c.png for c in charts(figures, tr, "ht")] == [c.png for c in charts(figures, tr, "ht")]


def test_bucket_labels(tr: Translator) -> None:
    labels = [_bucket_label(tr, "en", bound) for bound in BUCKETS]
    assert labels[:3] == ["1 min", "5 min", "15 min"]
    assert "2 h" in labels
    assert "1 d" in labels
    assert labels[-1] == "> 7 d"
    assert len(set(labels)) == len(labels)
