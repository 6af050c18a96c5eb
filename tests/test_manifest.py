"""Manifest sections: typed fields read once, each bad one refused in a line naming it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from cadenza.errors import BundleError
from cadenza.events import PERFORMANCE
from cadenza.manifest import (
    AttentionModel,
    PerformanceRepresentation,
    Sampling,
    Section,
    setting,
    size,
)

WHERE = "bundle/manifest.yaml"


@dataclass(frozen=True, kw_only=True)
class Example(Section):
    count: int = size()
    ratio: float = setting(0.5, above=0.0, high=1.0)
    name: str = setting("a", choices=("a", "b"))
    pairs: tuple[tuple[int, int], ...] | None = setting(None, low=0, high=127)
    sampling: Sampling = field(default_factory=Sampling)
    extra: dict[str, Any] = field(default_factory=dict)


def test_fields_are_read_with_their_types_and_defaults():
    section = Example.from_dict({"count": 3, "ratio": 1, "pairs": [[1, 2]], "note": "kept"}, WHERE)
    assert section == Example(count=3, ratio=1.0, pairs=((1, 2),), extra={"note": "kept"})
    assert isinstance(section.ratio, float)
    assert section.to_dict() == {"count": 3, "ratio": 1.0, "name": "a", "pairs": [[1, 2]],
                                 "sampling": {"temperature": 1.0, "top_k": 0, "top_p": 1.0},
                                 "note": "kept"}


@pytest.mark.parametrize("values, field_name, problem", [
    ({}, "count", "is missing"),
    ({"count": 0}, "count", "should be an int in 1..1048576, got 0"),
    ({"count": True}, "count", "should be an int"),
    ({"count": 2.0}, "count", "should be an int"),
    ({"count": "2"}, "count", "should be an int"),
    ({"count": 1, "ratio": 0}, "ratio", "should be a number above 0.0 and at most 1.0, got 0.0"),
    ({"count": 1, "ratio": float("nan")}, "ratio", "should be a number"),
    ({"count": 1, "name": "c"}, "name", "is 'c', not 'a', 'b'"),
    ({"count": 1, "pairs": [[1, 200]]}, "pairs[0][1]", "should be an int in 0..127, got 200"),
    ({"count": 1, "pairs": [[1]]}, "pairs[0]", "should be a list of 2"),
    ({"count": 1, "pairs": "low"}, "pairs", "should be a list"),
    ({"count": 1, "sampling": {"top_p": 0}}, "sampling.top_p", "should be a number above 0"),
    ({"count": 1, "sampling": []}, "sampling", "should be a mapping"),
])
def test_a_bad_field_is_one_line_naming_the_file_and_the_field(values, field_name, problem):
    with pytest.raises(BundleError) as error:
        Example.from_dict(values, WHERE, "section")
    message = str(error.value)
    assert message == f"{WHERE}: field 'section.{field_name}' {problem}" or (
        message.startswith(f"{WHERE}: field 'section.{field_name}' {problem}"))
    assert "\n" not in message


def test_cross_field_rules_name_the_field():
    with pytest.raises(BundleError, match=r"field 'model\.d_model' \(100\) should be a multiple"):
        AttentionModel.from_dict({"d_model": 100, "num_layers": 2, "num_heads": 3}, WHERE,
                                 "model")


@pytest.mark.parametrize("section", [
    Sampling(),
    Sampling(temperature=0.0, top_k=40, top_p=0.9),
    PerformanceRepresentation.of(PERFORMANCE),
    AttentionModel(d_model=64, num_layers=2, num_heads=4, extra={"dropout": 0.1}),
    Example(count=2, pairs=((0, 127),), extra={"provenance": {"steps": 3}}),
])
def test_what_is_written_reads_back_the_same(section):
    assert type(section).from_dict(section.to_dict(), WHERE) == section
    assert section.checked() == section


def test_the_performance_representation_is_the_codec():
    representation = PerformanceRepresentation.parse({"kind": "performance"})
    assert representation.codec() == PERFORMANCE
    assert representation.to_dict() == PERFORMANCE.to_dict()
