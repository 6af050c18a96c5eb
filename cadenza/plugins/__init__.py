"""Generator runtimes: numpy + onnxruntime only, never torch."""

from cadenza.plugins.base import Generator, load_generator, plugin_classes

__all__ = ["Generator", "load_generator", "plugin_classes"]
