"""Which mode plays a generator: the one decision `cadenza live` makes from what a generator
is (backing parts, or performance events) and the mode the player asked for."""

from __future__ import annotations

from cadenza.errors import ConfigError
from cadenza.plugins.base import Generator
from cadenza.realtime.backing_mode import BackingMode
from cadenza.realtime.call_response import CallResponseMode
from cadenza.realtime.config import LiveConfig
from cadenza.realtime.mode import makes_performance_events, plays_backing_parts

LiveModeClass = type[BackingMode] | type[CallResponseMode]


def mode_for(generator: Generator, config: LiveConfig) -> LiveModeClass:
    """The mode class that plays `generator` as `config.mode` asks; a ConfigError naming the
    setting to change when it cannot."""
    backing = config.mode == "backing"
    if backing and not plays_backing_parts(generator):
        raise ConfigError("bundle", f"{generator.bundle.name} ({generator.plugin}) plays no "
                          "backing parts; --mode backing needs a backing bundle")
    if not backing and plays_backing_parts(generator):
        raise ConfigError("mode", f"{generator.bundle.name} plays backing parts: "
                          "use --mode backing")
    if not makes_performance_events(generator):
        raise ConfigError("plugin", f"{generator.plugin} does not make performance events")
    return BackingMode if backing else CallResponseMode
