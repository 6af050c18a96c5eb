"""torch -> ONNX per model kind, parity checks, bundle writing."""

from __future__ import annotations

from pathlib import Path

from cadenza.errors import CadenzaError


def training_record(checkpoint: dict, model) -> dict:
    """The manifest's `training` field: provenance and the held-out figures of the run."""
    metrics = checkpoint.get("metrics", {})
    return {
        "data": checkpoint["config"]["data"],
        "steps": int(checkpoint["step"]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "valid_nll": round(float(checkpoint["valid_nll"]), 4),
        **{k: v for k, v in metrics.items() if k != "steps"},
    }


def export_checkpoint(
    checkpoint_path: str | Path, out_dir: str | Path, name: str | None = None
) -> Path:
    """Write a parity-checked bundle for a training checkpoint, whatever its model kind."""
    from cadenza.export.performance_rnn import export_performance_rnn
    from cadenza.export.transformer import export_transformer
    from cadenza.export.vae import export_vae
    from cadenza.training.loop import load_checkpoint

    exporters = {"performance-rnn": export_performance_rnn, "transformer": export_transformer}
    exporters["vae"] = export_vae
    checkpoint = load_checkpoint(checkpoint_path)
    kind = checkpoint.get("kind") if isinstance(checkpoint, dict) else None
    if kind not in exporters:
        raise CadenzaError(
            f"{checkpoint_path}: checkpoint kind {kind!r} has no exporter "
            f"(known: {', '.join(exporters)})"
        )
    return exporters[kind](checkpoint, out_dir, name=name)
