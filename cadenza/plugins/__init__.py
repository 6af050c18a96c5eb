"""Generator runtimes: numpy + onnxruntime only, never torch."""

from cadenza.plugins.base import (
    AudioGenerator,
    BackingGenerator,
    EventGenerator,
    Generator,
    Snapshot,
    load_generator,
    plugin_classes,
)

__all__ = [
    "AudioGenerator",
    "BackingGenerator",
    "EventGenerator",
    "Generator",
    "Snapshot",
    "load_generator",
    "plugin_classes",
]
