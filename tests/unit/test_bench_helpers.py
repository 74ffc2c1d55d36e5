"""The bench's own helpers (bench/): percentiles, -X importtime parsing, call labels, tables."""

from __future__ import annotations

import json
import math

from bench.cold_start import _importtime
from bench.inprocess import _item_kind
from bench.report import Section, Table, Target, as_markdown, as_text, percentile


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_importtime_keeps_top_level_by_cumulative_and_any_by_self() -> None:
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |     _leaf",
        "import time:       300 |        400 |   child",
        "import time:      1000 |       1400 | top_a",
        "import time:        50 |         50 | top_b",
        "something else on stderr",
    ])  # fmt: skip
    top_level, by_self = _importtime(stderr)
    assert top_level == [("top_a", 1.4, 1.0), ("child", 0.4, 0.3), ("_leaf", 0.1, 0.1), ("top_b", 0.05, 0.05)]
    assert by_self[0] == ("top_a", 1.0) and ("child", 0.3) in by_self


def test_item_kind_names_the_key_prefix() -> None:
    body = json.dumps({"TableName": "t", "Key": {"pk": {"S": "TOKEN#abc"}, "sk": {"S": "TOKEN"}}})
    assert _item_kind({"body": body.encode()}) == "(TOKEN)"
    assert _item_kind({"body": json.dumps({"Item": {"pk": {"S": "APPROVER#1"}}})}) == "(APPROVER)"
    assert _item_kind({"body": b"{}"}) == ""
    assert _item_kind({"body": b"Action=Publish"}) == ""


def test_report_renders_targets_and_pipes() -> None:
    section = Section("S", "how", [Table("T", ["a", "b"], [["x|y", 1.5]])], [Target("t", False, "why")])
    text = as_text([section])
    assert "[MISSED] t: why" in text and "1.50" in text
    markdown = as_markdown([section], [("cores", "2")], 1.0)
    assert "| x\\|y | 1.50 |" in markdown and "**MISSED**" in markdown and "| cores | 2 |" in markdown
