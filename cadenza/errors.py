"""The errors a user can cause. The CLI prints each as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class CadenzaError(Exception):
    """A problem with the user's input: a file, a bundle, a config value, a port."""


class MidiFileError(CadenzaError):
    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class BundleError(CadenzaError):
    def __init__(self, where: str | Path, problem: str):
        super().__init__(f"{where}: {problem}")


class ConfigError(CadenzaError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
