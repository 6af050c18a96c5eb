"""`cadenza export`: a training checkpoint of any kind to a parity-checked bundle."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from cadenza.atomic import atomic_write_text
from cadenza.bundle import MANIFEST, load_bundle, manifest_text
from cadenza.errors import CadenzaError
from cadenza.kinds import get_kind, kind_of_checkpoint, kinds_with
from cadenza.training.loop import load_checkpoint


def export_checkpoint(
    checkpoint_path: str | Path, out_dir: str | Path, name: str | None = None,
    sampling: dict[str, Any] | None = None,
) -> Path:
    """Write a parity-checked bundle for a training checkpoint, by its kind's exporter, with
    `sampling` (knob -> value) over the exporter's default knob values."""
    checkpoint = load_checkpoint(checkpoint_path)
    kind = kind_of_checkpoint(checkpoint)
    exportable = kinds_with("exporter")
    if kind not in exportable:
        raise CadenzaError(
            f"{checkpoint_path}: checkpoint kind {kind!r} has no exporter "
            f"(known: {', '.join(exportable)})"
        )
    out = get_kind(kind).piece("exporter")(checkpoint, out_dir, name=name)
    if sampling:
        set_sampling(out, sampling)
    return out


def set_sampling(bundle_dir: str | Path, values: dict[str, Any]) -> None:
    """Set a bundle's sampling defaults (the knobs' starting values: what `generate`, `live`
    and `eval` play with), chosen after training, e.g. on the validation split (docs/EVAL.md),
    checked as the bundle's plugin reads them; a bad one leaves the bundle as it was."""
    from cadenza.plugins.base import plugin_classes  # the plugins' manifest types

    path = Path(bundle_dir) / MANIFEST
    before = path.read_text()
    manifest = yaml.safe_load(before)
    manifest_type = plugin_classes()[manifest["plugin"]].manifest_type
    knobs = {f.name for f in fields(type(load_bundle(bundle_dir).section(manifest_type).sampling))}
    if unknown := sorted(set(values) - knobs):
        raise CadenzaError(f"{path}: no sampling knob {unknown[0]!r} in a "
                           f"{manifest['plugin']} bundle (knobs: {', '.join(sorted(knobs))})")
    manifest["sampling"] = {**manifest.get("sampling", {}), **values}
    atomic_write_text(path, manifest_text(manifest))
    try:
        load_bundle(bundle_dir).section(manifest_type)
    except CadenzaError:
        atomic_write_text(path, before)
        raise
