"""The model bundle: `manifest.yaml` + ONNX graphs, in a directory or a .zip of one.

The one contract between training and the engine. Loading validates every field the
engine relies on and refuses a mismatch with a one-line error naming the field.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cadenza.errors import BundleError
from cadenza.manifest import Sampling, Section
from cadenza.onnx_scan import external_tensor

FORMAT = "cadenza-bundle/1"
MANIFEST = "manifest.yaml"
DTYPES = {"int64", "int32", "float32", "float16", "bool"}
# A bundle is untrusted data (someone else's folder or zip): the sizes it may make us read or
# inflate, well above the shipped bundles (the largest is ~15 MB).
MAX_BUNDLE_BYTES = 256 << 20  # all of a bundle's files together (a zip: inflated)
MAX_FILE_BYTES = 256 << 20  # one graph file
MAX_MANIFEST_BYTES = 1 << 20
MAX_DIM = 1 << 20  # one dimension of an io shape (cadenza.manifest.MAX_SIZE)
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
    def safe_name(self) -> str:
        """The manifest's `name` as a folder or label name: letters, digits, '-', '_' and '.'
        only, never a path ('../../x' is '.._.._x' with its leading dots dropped: '_.._x')."""
        return safe_name(self.name)

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
        """The ONNX file of graph `key` (e.g. "step"), checked to hold all its weights: a
        graph naming external data (which onnxruntime would read from the current folder,
        loading from bytes) is a BundleError."""
        filename = self.manifest["graphs"][key]
        data = self._read(filename, f"graphs.{key}")
        try:
            external = external_tensor(data)
        except ValueError as e:
            raise BundleError(self.path / filename,
                              f"graph 'graphs.{key}' is not a readable ONNX model ({e})") from None
        if external is not None:
            raise BundleError(self.path / filename,
                              f"graph 'graphs.{key}' keeps tensor {external!r} in an external "
                              f"data file; a bundle's graphs must hold their weights")
        return data

    def _read(self, filename: str, field_name: str = "file") -> bytes:
        """A file the manifest names (at `field_name`), confined to the bundle and its size
        capped (a BundleError if not)."""
        where = self.path / MANIFEST
        _check_name(filename, field_name, where)
        if self._zip_prefix is None:
            target = file_inside(self.path, filename, field_name, where)
            if target.stat().st_size > MAX_FILE_BYTES:
                raise BundleError(target, f"field '{field_name}': the file is over "
                                          f"{MAX_FILE_BYTES >> 20} MB")
            return target.read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo(self._zip_prefix + filename)
            if info.file_size > MAX_FILE_BYTES:
                raise BundleError(self.path / filename, f"field '{field_name}': the file is "
                                                        f"over {MAX_FILE_BYTES >> 20} MB")
            return archive.read(info)


def safe_name(name: str, limit: int = 64) -> str:
    """`name` (untrusted: a manifest's) as one plain file name: other characters become '_',
    no leading dot, at most `limit` characters; 'bundle' if nothing is left."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))[:limit].lstrip(".")
    return cleaned or "bundle"


def _check_name(filename: Any, field_name: str, where: Path) -> str:
    """`filename` as a plain relative name inside the bundle (a/b.onnx at most): no absolute
    path, no drive, no `..`, no backslash; a BundleError naming `field_name` if not."""
    if not isinstance(filename, str) or not filename:
        raise BundleError(where, f"field '{field_name}' should be a file name, got "
                                 f"{filename!r:.60}")
    parts = filename.split("/")
    if (filename.startswith("/") or "\\" in filename or ":" in filename or "\0" in filename
            or any(part in ("", ".", "..") for part in parts)):
        raise BundleError(where, f"field '{field_name}' is {filename!r:.80}: a bundle's files "
                                 f"are plain relative names inside it (no absolute path, "
                                 f"drive or '..')")
    return filename


def file_inside(folder: Path, filename: str, field_name: str, where: Path) -> Path:
    """folder/filename, refused (a BundleError at `where`) when a symlink takes it out of
    the folder: any file a bundle carries is read through this."""
    target = folder / filename
    try:
        target.resolve().relative_to(folder.resolve())
    except ValueError:
        raise BundleError(where, f"field '{field_name}' is {filename!r:.80}, a link out of "
                                 f"the bundle") from None
    return target


def _check_zip(path: Path, archive: zipfile.ZipFile) -> None:
    """Every member a plain relative name, and the inflated sizes capped, before anything is
    inflated (zipfile inflates a member to at most its declared size, CRC-checked)."""
    total = 0
    for info in archive.infolist():
        name = info.filename.rstrip("/") if info.is_dir() else info.filename
        _check_name(name, f"member {info.filename!r:.80}", path)
        if info.file_size > MAX_FILE_BYTES:
            raise BundleError(path, f"member {info.filename!r:.80} inflates to "
                                    f"{info.file_size} bytes (over {MAX_FILE_BYTES >> 20} MB)")
        total += info.file_size
    if total > MAX_BUNDLE_BYTES:
        raise BundleError(path, f"the zip inflates to {total} bytes (over "
                                f"{MAX_BUNDLE_BYTES >> 20} MB)")




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
        _check_name(filename, f"graphs.{key}", where / MANIFEST)
        if not exists(filename, f"graphs.{key}"):
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
                if not isinstance(shape, list) or len(shape) > 16 or not all(
                    (isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DIM)
                    or (isinstance(d, str) and d.isidentifier())
                    for d in shape
                ):
                    raise BundleError(
                        where / MANIFEST,
                        f"field '{field_name}.shape' should list at most 16 ints in "
                        f"1..{MAX_DIM} or names",
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
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleError(manifest_path, f"is over {MAX_MANIFEST_BYTES >> 10} KB")
        file_inside(path, MANIFEST, MANIFEST, path)
        text = manifest_path.read_bytes()
        prefix = None

        def exists(name: str, field_name: str) -> bool:
            return file_inside(path, name, field_name, path / MANIFEST).is_file()
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                _check_zip(path, archive)
                names = set(archive.namelist())
                manifests = sorted((n for n in names if n.rsplit("/", 1)[-1] == MANIFEST),
                                   key=len)
                if not manifests:
                    raise BundleError(path, f"no {MANIFEST} in the zip")
                prefix = manifests[0][: -len(MANIFEST)]
                if archive.getinfo(manifests[0]).file_size > MAX_MANIFEST_BYTES:
                    raise BundleError(path / manifests[0],
                                      f"is over {MAX_MANIFEST_BYTES >> 10} KB")
                text = archive.read(manifests[0])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as e:
            raise BundleError(path, f"not a readable zip ({str(e)[:120]})") from None

        def exists(name: str, field_name: str) -> bool:
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
    """Write manifest.yaml and the graph files named in manifest['graphs'], each atomically,
    the manifest last (and any old one removed first): a bundle whose writing was cut short
    has no manifest and is refused as such, never read as a mix of old and new graphs."""
    from cadenza.atomic import atomic_write, atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for key, filename in manifest["graphs"].items():
        atomic_write(out_dir / filename, graphs[key])
    atomic_write_text(out_dir / MANIFEST, manifest_text(manifest))
    load_bundle(out_dir)  # what we write must be what we accept
    return out_dir


def manifest_text(manifest: dict[str, Any]) -> str:
    """A manifest as the YAML a bundle holds: in its own order, no anchors."""
    return yaml.dump(manifest, Dumper=_PlainDumper, sort_keys=False)


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
