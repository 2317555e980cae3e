"""Server-made SVG charts: points land where their values say, gaps stay gaps, no inline
style or script (the CSP forbids both), text is escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sluicegate.console._svg import Series, _nice_max, line_chart, weight_bar

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_line_spans_the_plot_and_scales_to_a_round_top() -> None:
    svg = parse(line_chart("rps", [Series("green", "green", [(0, 0.0), (10, 8.0)])]))
    line = svg.find("svg:polyline", NS)
    assert line is not None
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in line.get("points", "").split())
    assert x0 == 56 and x1 == 552  # left padding .. width - right padding
    # the plot is 122 px high from y=18; 8 rounds the axis top up to 10: 8/10 of the way up
    assert y0 == 140 and y1 == 42.4
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "10" in texts and "green" in texts and "10 s" in texts


def test_seconds_without_data_split_the_line() -> None:
    points = [(0, 1.0), (1, None), (2, 1.0), (3, 2.0)]
    svg = parse(line_chart("p50", [Series("blue", "blue", points)], unit="s"))
    assert len(svg.findall("svg:circle", NS)) == 1  # the lone first point
    assert len(svg.findall("svg:polyline", NS)) == 1


def test_a_threshold_is_drawn_and_labelled_and_an_empty_chart_says_so() -> None:
    svg = str(line_chart("errors", [Series("x", "other", [(0, 1.0), (5, 2.0)])], threshold=5))
    assert 'class="threshold"' in svg and "threshold 5" in svg
    assert "no data yet" in str(line_chart("errors", [Series("x", "green", [])]))


def test_charts_carry_no_inline_style_or_script_and_escape_names() -> None:
    svg = str(line_chart("<b>", [Series("<script>", "green", [(0, 1.0), (1, 2.0)])]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert not re.search(r"\sstyle=", svg)


def test_axis_tops_are_round() -> None:
    assert [_nice_max(v) for v in (0, 0.3, 1, 7, 12, 26, 4000)] == [1, 0.5, 1, 10, 20, 50, 5000]


def test_the_weight_bar_fills_the_set_share_and_marks_the_measured_one() -> None:
    svg = parse(weight_bar(25, 40.0, width=200))
    rects = svg.findall("svg:rect", NS)
    assert rects[1].get("width") == "50.0"
    tick = svg.find("svg:line", NS)
    assert tick is not None and tick.get("x1") == "80.0"
    assert svg.findtext("svg:title", namespaces=NS) == "set 25 %, measured 40 %"
    assert parse(weight_bar(150, None)).get("data-set") == "100"  # clamped
