"""Whether an ONNX graph reads weights from outside itself (external data), found by walking
its protobuf bytes: the runtime has no `onnx` package, and a graph loaded from bytes would read
such weights from the current directory. Bytes the walk cannot parse count as refused."""

from __future__ import annotations

# ONNX protobuf field numbers (onnx.proto) of the messages that can hold a tensor: the walk
# below finds any TensorProto whose data lives outside the graph file.
_MODEL = {7: "graph", 25: "function", 20: "training"}
_TRAINING = {1: "graph", 2: "graph"}
_GRAPH = {1: "node", 5: "tensor", 15: "sparse"}
_FUNCTION = {7: "node"}
_NODE = {5: "attribute"}
_ATTRIBUTE = {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"}
_SPARSE = {1: "tensor", 2: "tensor"}
_SCHEMA = {"model": _MODEL, "training": _TRAINING, "graph": _GRAPH, "function": _FUNCTION,
           "node": _NODE, "attribute": _ATTRIBUTE, "sparse": _SPARSE}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: memoryview):
    """(field number, wire type, value) of one protobuf message: value is the int of a varint,
    the bytes of a length-delimited field, None for fixed-size ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
            yield number, wire, None
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, None
        else:
            raise ValueError(f"wire type {wire}")
    if pos > len(data):
        raise ValueError("truncated field")


def _external(data: memoryview, kind: str, depth: int) -> str | None:
    if depth > 64:
        raise ValueError("nested too deep")
    if kind == "tensor":
        name, external = "", False
        for number, wire, value in _fields(data):
            if number == _TENSOR_NAME and wire == 2:
                name = bytes(value).decode("utf-8", "replace")
            elif (number == _TENSOR_EXTERNAL_DATA and wire == 2) or (
                    number == _TENSOR_DATA_LOCATION and wire == 0 and value != 0):
                external = True
        return (name or "(unnamed)") if external else None
    schema = _SCHEMA[kind]
    for number, wire, value in _fields(data):
        if wire == 2 and number in schema:
            found = _external(value, schema[number], depth + 1)
            if found is not None:
                return found
    return None


def external_tensor(graph: bytes) -> str | None:
    """The name of a tensor of an ONNX model (its initializers, node attributes, subgraphs,
    functions) whose data is external (`data_location: EXTERNAL` or `external_data`
    entries), else None; ValueError (saying why) for bytes that do not parse as ONNX."""
    return _external(memoryview(graph), "model", 0)
