"""Float16-stored weights: half the bytes, the same float32 arithmetic as the rounded model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto

from cadenza.export.onnx_io import onnx_graph, round_weights_to_float16, store_weights_float16


class Projection(torch.nn.Module):
    """A weight (an initializer) and a fixed basis (a buffer: the tracer writes a Constant)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(64, 64) / 8)
        self.register_buffer("basis", torch.randn(64, 64) / 8, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weight) @ self.basis


def test_weights_and_constants_are_stored_as_float16_and_computed_alike():
    torch.manual_seed(0)
    model = Projection()
    round_weights_to_float16(model)
    graph = onnx_graph(model, (torch.zeros(1, 64),), ["x"], ["y"], {"x": {0: "n"}},
                       fold_constants=False)
    half = store_weights_float16(graph)
    stored = onnx.load_from_string(half)
    floats = [t for t in stored.graph.initializer if t.data_type == TensorProto.FLOAT]
    constants = [n.attribute[0].t for n in stored.graph.node if n.op_type == "Constant"]
    assert not [t for t in floats if np.prod(t.dims) >= 1024]
    assert [t.data_type for t in constants if np.prod(t.dims) >= 1024] == [TensorProto.FLOAT16]
    assert len(half) < 0.6 * len(graph)
    x = np.random.default_rng(1).normal(size=(3, 64)).astype(np.float32)
    session = ort.InferenceSession(half, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, atol=1e-5)
