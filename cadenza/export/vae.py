"""Export a segment VAE checkpoint: four small ONNX graphs in one bundle.

- encoder: a segment's roll (1, steps, 3, pitches) -> posterior mean and log-variance;
- transition: a code -> mean and log-variance of the next segment's code (continuation);
- initial: a code -> the decoder's first (h, c);
- step: (z, the previous frame, h, c) -> this frame's logits (onset, hold, velocity), h, c.

The decoder runs one step per grid step so that sampling stays on the host (temperature
changes live, a hold only continues a sounding pitch). Written only after a parity check:
codes and logits agree to 1e-4 and a greedy decode gives the same frames in both runtimes.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from cadenza.bundle import FORMAT, write_bundle
from cadenza.errors import CadenzaError
from cadenza.manifest import Sampling
from cadenza.plugins.manifests import PianorollRepresentation, VAEManifest, VAEModel
from cadenza.training.vae import CHANNELS, SegmentVAE
from cadenza.training.vae_train import model_from_checkpoint

PARITY_TOLERANCE = 1e-4
PARITY_SEGMENTS = 4
DEFAULT_BPM = 120.0


class _Encoder(nn.Module):
    def __init__(self, model: SegmentVAE):
        super().__init__()
        self.model = model

    def forward(self, roll: torch.Tensor):
        return self.model.encode(roll)


class _Transition(_Encoder):
    def forward(self, z: torch.Tensor):
        return self.model.next_code(z)


class _Initial(_Encoder):
    def forward(self, z: torch.Tensor):
        return self.model.initial_state(z)


class _Step(_Encoder):
    def forward(self, z: torch.Tensor, frame: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h, c) = self.model.decode(z, frame.unsqueeze(1), (h, c))
        return logits[:, 0], h, c


def _shapes(model: SegmentVAE) -> dict[str, list[int]]:
    c = model.config
    return {
        "roll": [1, model.steps, CHANNELS, model.pitches],
        "z": [1, c.latent],
        "frame": [1, CHANNELS, model.pitches],
        "state": [c.decoder_layers, 1, c.decoder_hidden],
    }


def _io(model: SegmentVAE) -> dict:
    s = _shapes(model)

    def f(shape):
        return {"shape": shape, "dtype": "float32"}

    return {
        "encoder": {
            "inputs": {"roll": f(s["roll"])},
            "outputs": {"mu": f(s["z"]), "logvar": f(s["z"])},
        },
        "transition": {
            "inputs": {"z": f(s["z"])},
            "outputs": {"mu": f(s["z"]), "logvar": f(s["z"])},
        },
        "initial": {
            "inputs": {"z": f(s["z"])},
            "outputs": {"h": f(s["state"]), "c": f(s["state"])},
        },
        "step": {
            "inputs": {
                "z": f(s["z"]),
                "frame": f(s["frame"]),
                "h": f(s["state"]),
                "c": f(s["state"]),
            },
            "outputs": {"logits": f(s["frame"]), "h_out": f(s["state"]), "c_out": f(s["state"])},
        },
    }


def graphs(model: SegmentVAE) -> dict[str, bytes]:
    spec = _io(model)
    modules = {"encoder": _Encoder, "transition": _Transition, "initial": _Initial, "step": _Step}
    out = {}
    for key, module in modules.items():
        inputs = spec[key]["inputs"]
        example = tuple(torch.zeros(t["shape"]) for t in inputs.values())
        buffer = io.BytesIO()
        # The TorchScript exporter (deprecated, warns) exports LSTMs without onnxscript.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module(model).eval(),
                example,
                buffer,
                dynamo=False,
                input_names=list(inputs),
                output_names=list(spec[key]["outputs"]),
                opset_version=17,
            )
        out[key] = buffer.getvalue()
    return out


def _session(graph: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(graph, providers=["CPUExecutionProvider"])


@torch.no_grad()
def parity_check(model: SegmentVAE, graph: dict[str, bytes], seed: int = 0) -> float:
    """Encode sparse random rolls, step the transition and greedy-decode in both runtimes;
    returns the largest difference seen (codes, states, logits)."""
    sessions = {key: _session(g) for key, g in graph.items()}
    rng = np.random.default_rng(seed)
    worst = 0.0

    def check(name: str, a: torch.Tensor, b: np.ndarray) -> None:
        nonlocal worst
        worst = max(worst, float(np.abs(a.numpy() - b).max()))
        if worst > PARITY_TOLERANCE:
            raise CadenzaError(
                f"parity check failed: {name} differs by {worst:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e})"
            )

    shape = _shapes(model)["roll"]
    for _ in range(PARITY_SEGMENTS):
        roll = (rng.random(shape) < 0.03).astype(np.float32)
        roll[:, :, 2] *= rng.random(roll[:, :, 2].shape).astype(np.float32)
        mu_t, logvar_t = model.encode(torch.from_numpy(roll))
        mu_o, logvar_o = sessions["encoder"].run(None, {"roll": roll})
        check("encoder mu", mu_t, mu_o)
        check("encoder logvar", logvar_t, logvar_o)
        next_t, _ = model.next_code(mu_t)
        next_o, _ = sessions["transition"].run(None, {"z": mu_o})
        check("transition", next_t, next_o)
        step = _Step(model).eval()
        h, c = sessions["initial"].run(None, {"z": next_o})
        h_t, c_t = model.initial_state(next_t)
        check("initial state", h_t, h)
        frame_o = np.zeros(_shapes(model)["frame"], np.float32)
        frame_t = torch.zeros(_shapes(model)["frame"])
        for t in range(model.steps):
            logits_o, h, c = sessions["step"].run(
                None, {"z": next_o, "frame": frame_o, "h": h, "c": c}
            )
            logits_t, h_t, c_t = step(next_t, frame_t, h_t, c_t)
            check(f"step {t} logits", logits_t, logits_o)
            frame_o, frame_t = (
                _greedy(frame_o, logits_o),
                _greedy(frame_t.numpy(), logits_t.numpy()),
            )
            if not np.array_equal(frame_o[:, :2], frame_t[:, :2]):
                raise CadenzaError(f"parity check failed: greedy frames differ at step {t}")
            frame_t = torch.from_numpy(frame_t)
    return worst


def _greedy(previous: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The frame the plugin decodes at temperature 0 (see cadenza.plugins.vae)."""
    sounding = previous[:, 0] + previous[:, 1] > 0
    onset = logits[:, 0] > 0
    hold = (logits[:, 1] > 0) & sounding & ~onset
    velocity = 1.0 / (1.0 + np.exp(-logits[:, 2])) * onset
    return np.stack([onset, hold, velocity], axis=1).astype(np.float32)


def export_vae(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    model = model_from_checkpoint(checkpoint)
    graph = graphs(model)
    worst = parity_check(model, graph)
    config = checkpoint["config"]
    grid = model.config.grid
    metrics = checkpoint.get("metrics", {})
    styles = checkpoint.get("style_codes", {})
    section = VAEManifest(
        sampling=Sampling(temperature=0.5, top_k=0, top_p=1.0),
        representation=PianorollRepresentation.of(grid, DEFAULT_BPM),
        style_codes={name: tuple(code) for name, code in styles.items()},
        model=VAEModel.parse(config["model"], "model"),
    )
    manifest = {
        "format": FORMAT,
        "plugin": "vae",
        "name": name or Path(config["out"]).name,
        **section.checked().to_dict(),
        "graphs": {key: f"{key}.onnx" for key in graph},
        "io": _io(model),
        "conditions": {"styles": list(styles)},
        "training": {
            "data": list(config["data"]),
            "steps": int(checkpoint["step"]),
            "parameters": sum(p.numel() for p in model.parameters()),
            **{k: v for k, v in metrics.items() if k != "steps"},
        },
        "parity": {"segments": PARITY_SEGMENTS, "max_abs_diff": float(f"{worst:.3g}")},
    }
    return write_bundle(out_dir, manifest, graph)
