"""The ONNX helpers every exporter shares: trace a torch module to ONNX bytes, store large
weights as float16, and the manifest's training record. A leaf module: it imports torch and
onnx, and nothing of Cadenza's, so the trainers (a critic writes its own bundle) and the
exporters both import it without a cycle."""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from onnx import TensorProto, helper, numpy_helper


def training_record(checkpoint: dict, model: torch.nn.Module) -> dict:
    """The manifest's `training` field: provenance and the held-out figures of the run."""
    metrics = checkpoint.get("metrics", {})
    return {
        "data": checkpoint["config"]["data"],
        "steps": int(checkpoint["step"]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "valid_nll": round(float(checkpoint["valid_nll"]), 4),
        **{k: v for k, v in metrics.items() if k != "steps"},
    }


def onnx_graph(
    module: torch.nn.Module, example: tuple, inputs: list[str], outputs: list[str], dynamic: dict,
    fold_constants: bool = True,
) -> bytes:
    """`module` traced on `example` to ONNX (opset 17) bytes, with named inputs and outputs
    and the `dynamic` axes left free. Without `fold_constants`, what is computed from the
    weights alone (a transposed codebook, its norms) stays a computation in the file, and
    onnxruntime folds it when it loads the graph: a smaller file, the same run time."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, buffer, dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, opset_version=17,
                          do_constant_folding=fold_constants)
    return buffer.getvalue()


HALF_MIN_ELEMENTS = 1024  # smaller tensors (biases, norms) stay float32: they cost nothing


def round_weights_to_float16(model: torch.nn.Module) -> None:
    """Round a torch model's float parameters to float16 precision, in place (still float32
    tensors), so that the PyTorch side of a parity check holds exactly the weights that a
    graph written by `store_weights_float16` carries."""
    with torch.no_grad():
        # Buffers too: a codec's EMA codebooks are buffers, and the graph carries them.
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point() and tensor.numel() >= HALF_MIN_ELEMENTS:
                tensor.copy_(tensor.half().float())


def store_weights_float16(graph: bytes) -> bytes:
    """The graph with its large float32 weights stored as float16 and cast back to float32
    where the graph starts: half the bytes on disk, the same float32 arithmetic at run time
    (onnxruntime folds the casts when it loads the graph)."""
    model = onnx.load_from_string(graph)
    casts = []
    for tensor in model.graph.initializer:
        if tensor.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        if values.size < HALF_MIN_ELEMENTS:
            continue
        name = tensor.name
        tensor.CopyFrom(numpy_helper.from_array(values.astype("float16"), f"{name}.float16"))
        casts.append(
            helper.make_node("Cast", [f"{name}.float16"], [name], to=TensorProto.FLOAT)
        )
    # Large constants the tracer wrote as Constant nodes (a codec's fixed DFT bases) alike.
    nodes = []
    for node in model.graph.node:
        value = node.attribute[0].t if node.op_type == "Constant" and node.attribute else None
        if (value is not None and value.data_type == TensorProto.FLOAT
                and numpy_helper.to_array(value).size >= HALF_MIN_ELEMENTS):
            half = numpy_helper.from_array(numpy_helper.to_array(value).astype("float16"))
            name = node.output[0]
            nodes.append(helper.make_node("Constant", [], [f"{name}.float16"], value=half))
            nodes.append(helper.make_node("Cast", [f"{name}.float16"], [name],
                                          to=TensorProto.FLOAT))
        else:
            nodes.append(node)
    nodes = [*casts, *nodes]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()
