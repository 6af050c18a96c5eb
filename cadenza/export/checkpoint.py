"""`cadenza export`: a training checkpoint of any kind to a parity-checked bundle."""

from __future__ import annotations

from pathlib import Path

from cadenza.errors import CadenzaError
from cadenza.kinds import get_kind, kind_of_checkpoint, kinds_with
from cadenza.training.loop import load_checkpoint


def export_checkpoint(
    checkpoint_path: str | Path, out_dir: str | Path, name: str | None = None
) -> Path:
    """Write a parity-checked bundle for a training checkpoint, by its kind's exporter."""
    checkpoint = load_checkpoint(checkpoint_path)
    kind = kind_of_checkpoint(checkpoint)
    exportable = kinds_with("exporter")
    if kind not in exportable:
        raise CadenzaError(
            f"{checkpoint_path}: checkpoint kind {kind!r} has no exporter "
            f"(known: {', '.join(exportable)})"
        )
    return get_kind(kind).piece("exporter")(checkpoint, out_dir, name=name)
