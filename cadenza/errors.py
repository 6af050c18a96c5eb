"""The errors a user can cause. The CLI prints each as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path

import yaml


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


def read_settings(path: str | Path) -> dict:
    """A YAML file of settings (safe_load), as a mapping; anything else is a ConfigError."""
    if Path(path).is_dir():
        raise ConfigError(str(path), "is a folder, expected a YAML file of settings")
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(str(path), "no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not a text file (expected YAML in UTF-8)") from None
    except OSError as e:
        raise ConfigError(str(path), f"cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(str(path), "expected a mapping of settings at the top level, got "
                          f"{type(values).__name__}")
    return values
