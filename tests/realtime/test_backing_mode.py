"""Backing mode's programs (cadenza.realtime.backing_mode): each part's at start, the bundle's
unless given, by list (--backing-programs) or by the part's name (--program bass=33)."""

from __future__ import annotations

import pytest

from cadenza.errors import ConfigError
from tests.realtime.helpers import FakeRunningEngine, fake_engine, wait_for


def test_a_part_named_gets_its_program_at_start(tiny_backing_bundle):
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", backing_programs=(52, 49, 40),
                           part_programs={"bass": 33}) as running:
        wait_for(lambda: sum(m[0] & 0xF0 == 0xC0 for m in running.output.messages) >= 3)
        names = running.engine.generator.parts.names
        channels = running.engine.mode.backing.channels
    programs = [m for m in running.output.messages if m[0] & 0xF0 == 0xC0][:3]
    by_part = {names[channels.index(m[0] & 0x0F)]: m[1] for m in programs}
    assert by_part == {"alto": 52, "tenor": 49, "bass": 33}


def test_a_part_the_bundle_has_not_is_one_line(tiny_backing_bundle):
    with pytest.raises(ConfigError, match="program: no backing part 'drums'"):
        fake_engine(tiny_backing_bundle, mode="backing", part_programs={"drums": 1})
