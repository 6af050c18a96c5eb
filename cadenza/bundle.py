"""The model bundle: `manifest.yaml` + ONNX graphs, in a directory or a .zip of one.

The one contract between training and the engine. Loading validates every field the
engine relies on and refuses a mismatch with a one-line error naming the field.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cadenza.errors import BundleError
from cadenza.manifest import Sampling, Section

FORMAT = "cadenza-bundle/1"
MANIFEST = "manifest.yaml"
DTYPES = {"int64", "int32", "float32", "float16", "bool"}
SectionType = TypeVar("SectionType", bound=Section)


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    _zip_prefix: str | None = field(default=None, repr=False)

    @property
    def plugin(self) -> str:
        return self.manifest["plugin"]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def representation(self) -> dict[str, Any]:
        return self.manifest["representation"]

    @property
    def io(self) -> dict[str, Any]:
        return self.manifest["io"]

    @property
    def sampling(self) -> dict[str, Any]:
        return self.manifest.get("sampling", {})

    @property
    def training(self) -> dict[str, Any]:
        return self.manifest.get("training", {})

    def section(self, kind: type[SectionType]) -> SectionType:
        """The manifest read as a typed section (a plugin's), checked: a bad field is a
        one-line BundleError naming this manifest and the field."""
        return kind.from_dict(self.manifest, self.path / MANIFEST)

    def graph_bytes(self, key: str) -> bytes:
        """The ONNX file of graph `key` (e.g. "step")."""
        filename = self.manifest["graphs"][key]
        return self._read(filename)

    def _read(self, filename: str) -> bytes:
        if self._zip_prefix is None:
            return (self.path / filename).read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self._zip_prefix + filename)


def _require(manifest: dict, key: str, kind: type, where: Path) -> Any:
    if key not in manifest:
        raise BundleError(where / MANIFEST, f"missing field '{key}'")
    value = manifest[key]
    if not isinstance(value, kind):
        raise BundleError(
            where / MANIFEST, f"field '{key}' should be a {kind.__name__}, got {value!r}"
        )
    return value


def _validate(manifest: Any, where: Path, exists) -> None:
    if not isinstance(manifest, dict):
        raise BundleError(where / MANIFEST, "is not a mapping of fields")
    if _require(manifest, "format", str, where) != FORMAT:
        raise BundleError(
            where / MANIFEST, f"field 'format' is {manifest['format']!r}, expected {FORMAT!r}"
        )
    _require(manifest, "plugin", str, where)
    _require(manifest, "name", str, where)
    representation = _require(manifest, "representation", dict, where)
    if "kind" not in representation:
        raise BundleError(where / MANIFEST, "missing field 'representation.kind'")
    graphs = _require(manifest, "graphs", dict, where)
    if not graphs:
        raise BundleError(where / MANIFEST, "field 'graphs' lists no graph")
    io = _require(manifest, "io", dict, where)
    for key, filename in graphs.items():
        if not isinstance(filename, str) or not exists(filename):
            raise BundleError(where, f"graph 'graphs.{key}' file {filename!r} is missing")
        spec = io.get(key)
        if not isinstance(spec, dict) or not {"inputs", "outputs"} <= set(spec):
            raise BundleError(where / MANIFEST, f"field 'io.{key}' needs 'inputs' and 'outputs'")
        for side in ("inputs", "outputs"):
            if not isinstance(spec[side], dict) or not spec[side]:
                raise BundleError(
                    where / MANIFEST, f"field 'io.{key}.{side}' should map names to specs"
                )
            for name, tensor in spec[side].items():
                field_name = f"io.{key}.{side}.{name}"
                if not isinstance(tensor, dict) or tensor.get("dtype") not in DTYPES:
                    raise BundleError(
                        where / MANIFEST,
                        f"field '{field_name}.dtype' should be one of {sorted(DTYPES)}",
                    )
                shape = tensor.get("shape")
                # A dimension is a size, or a name for one the graph leaves free ("length").
                if not isinstance(shape, list) or not all(
                    (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                    or (isinstance(d, str) and d.isidentifier())
                    for d in shape
                ):
                    raise BundleError(
                        where / MANIFEST,
                        f"field '{field_name}.shape' should list positive ints or names",
                    )
    # The knobs' starting values, for every bundle whatever its plugin (a plugin's own section
    # may add knobs: codec-lm's cfg).
    Sampling.from_dict(manifest.get("sampling", {}), where / MANIFEST, "sampling")


def load_bundle(path: str | Path) -> Bundle:
    """Open and validate a bundle directory or .zip (or a shipped bundle by its folder name,
    e.g. `backing-chords`); raises BundleError naming the problem."""
    path = Path(path)
    if not path.exists() and len(path.parts) == 1:
        path = next((d / path for d in models_dirs() if (d / path / MANIFEST).is_file()), path)
    if not path.exists():
        raise BundleError(path, "no such bundle (a directory or .zip holding manifest.yaml)")
    if path.is_dir():
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(path, f"no {MANIFEST} in the bundle directory")
        text = manifest_path.read_bytes()
        prefix = None

        def exists(name: str) -> bool:
            return (path / name).is_file()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        manifests = sorted((n for n in names if n.rsplit("/", 1)[-1] == MANIFEST), key=len)
        if not manifests:
            raise BundleError(path, f"no {MANIFEST} in the zip")
        prefix = manifests[0][: -len(MANIFEST)]
        with zipfile.ZipFile(path) as archive:
            text = archive.read(manifests[0])

        def exists(name: str) -> bool:
            return prefix + name in names
    else:
        raise BundleError(path, "is neither a bundle directory nor a .zip")
    try:
        manifest = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BundleError(path / MANIFEST, f"not valid YAML ({str(e).splitlines()[0]})") from None
    _validate(manifest, path, exists)
    return Bundle(path=path, manifest=manifest, _zip_prefix=prefix)


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-mappings out in full: no &anchors for a reader to chase."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_bundle(out_dir: str | Path, manifest: dict[str, Any], graphs: dict[str, bytes]) -> Path:
    """Write manifest.yaml and the graph files named in manifest['graphs']."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, filename in manifest["graphs"].items():
        (out_dir / filename).write_bytes(graphs[key])
    (out_dir / MANIFEST).write_text(yaml.dump(manifest, Dumper=_PlainDumper, sort_keys=False))
    load_bundle(out_dir)  # what we write must be what we accept
    return out_dir


def _package_models() -> Path | None:
    """The shipped bundles inside the installed package (`cadenza.models`, which is the
    repository's models/ folder: a wheel carries it, an editable install maps it). None where
    the package is not a real folder on disk (a zipped install): bundles are read from files,
    so there $CADENZA_MODELS or --bundle has to name them."""
    try:
        folder = resources.files("cadenza.models")
    except ModuleNotFoundError:  # a source tree without models/__init__.py
        return None
    return folder if isinstance(folder, Path) and folder.is_dir() else None


def _checkout_models() -> Path | None:
    """models/ of the source checkout this module was imported from (cadenza/ beside
    pyproject.toml); None in an installed package, where that folder would be site-packages'."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "models").is_dir():
        return root / "models"
    return None


def models_dirs() -> list[Path]:
    """Where shipped and user bundles are looked for, first match wins: $CADENZA_MODELS, the
    bundles that come with the package, then a source checkout's models/."""
    dirs = []
    if os.environ.get("CADENZA_MODELS"):
        dirs.append(Path(os.environ["CADENZA_MODELS"]))
    for found in (_package_models(), _checkout_models()):
        if found is not None and all(found.resolve() != d.resolve() for d in dirs):
            dirs.append(found)
    return dirs


def _rebuild_hint() -> str:
    """How to get the shipped bundles back: `make models` only in a checkout that has a
    Makefile; an installed package carries them."""
    root = Path(__file__).resolve().parent.parent
    if (root / "Makefile").is_file() and (root / "models").is_dir():
        return "the shipped bundles are in models/; `make models` rebuilds them"
    return "the shipped bundles come with the package: reinstall cadenza if they are missing"


def default_bundle_path(plugin: str) -> Path:
    for directory in models_dirs():
        candidate = directory / plugin
        if (candidate / MANIFEST).is_file():
            return candidate
    searched = ", ".join(str(d / plugin) for d in models_dirs()) or (
        "nowhere: this install's cadenza/models is not a folder on disk")
    raise BundleError(
        plugin,
        f"no default bundle found (looked in {searched}); pass --bundle DIR or set "
        f"CADENZA_MODELS to a folder of bundles ({_rebuild_hint()})",
    )


def find_bundles() -> list[Path]:
    found: list[Path] = []
    for directory in models_dirs():
        if directory.is_dir():
            found.extend(sorted(p.parent for p in directory.glob(f"*/{MANIFEST}")))
    return found
