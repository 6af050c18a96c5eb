"""Bundles from others are untrusted data (DESIGN.md, "Three trust boundaries"): every file a
manifest names stays inside the bundle, a zip is not inflated past a cap, a graph with
external data is refused, absurd sizes are refused before anything is allocated; each as one
line on stderr, exit 2, naming the file and the field."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from cadenza.bundle import MAX_BUNDLE_BYTES, load_bundle, safe_name
from cadenza.errors import BundleError

MODELS = Path(__file__).resolve().parent.parent / "models"
CADENZA = Path(sys.executable).parent / "cadenza"


def _copy(tmp_path: Path, name: str = "performance-rnn") -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(MODELS / name, folder)
    return folder


def _edit(folder: Path, change) -> Path:
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    change(manifest)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def _set(path: str, value):
    def change(manifest):
        keys = path.split(".")
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


def _external_graph(folder: Path) -> None:
    """step.onnx replaced by a graph whose weight lives in `w.bin` (external data)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    model = helper.make_model(graph)
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin",
                                   size_threshold=0)
    (folder / "step.onnx").write_bytes(model.SerializeToString())


def _zip(tmp_path: Path, members: dict[str, bytes | int]) -> Path:
    """A zip bundle: the shipped performance-rnn plus `members` (bytes, or a count of zero
    bytes written deflated: a bomb)."""
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in (MODELS / "performance-rnn").iterdir():
            archive.write(file, f"b/{file.name}")
        for name, content in members.items():
            if isinstance(content, int):
                with archive.open(zipfile.ZipInfo(name), "w", force_zip64=True) as out:
                    chunk = bytes(1 << 22)
                    for _ in range(content // len(chunk)):
                        out.write(chunk)
            else:
                archive.writestr(name, content)
    return path


def case_dotdot(tmp_path):
    return _edit(_copy(tmp_path), _set("graphs.step", "../x.onnx")), "graphs.step"


def case_absolute(tmp_path):
    return _edit(_copy(tmp_path), _set("graphs.step", "/etc/passwd")), "graphs.step"


def case_nested_dotdot(tmp_path):
    return _edit(_copy(tmp_path), _set("graphs.step", "a/../../x.onnx")), "graphs.step"


def case_drive(tmp_path):
    return _edit(_copy(tmp_path), _set("graphs.step", "C:\\x.onnx")), "graphs.step"


def case_symlink(tmp_path):
    folder = _copy(tmp_path)
    outside = tmp_path / "outside.onnx"
    shutil.copy(folder / "step.onnx", outside)
    (folder / "step.onnx").unlink()
    (folder / "step.onnx").symlink_to(outside)
    return folder, "graphs.step"


def case_wrong_type(tmp_path):
    return _edit(_copy(tmp_path), _set("graphs.step", 5)), "graphs.step"


def case_external_data(tmp_path):
    folder = _copy(tmp_path)
    _external_graph(folder)
    return folder, "graphs.step"


def case_zip_dotdot(tmp_path):
    return _zip(tmp_path, {"../evil.txt": b"x"}), "../evil.txt"


def case_zip_absolute(tmp_path):
    return _zip(tmp_path, {"/tmp/evil.txt": b"x"}), "/tmp/evil.txt"


def case_zip_bomb(tmp_path):
    return _zip(tmp_path, {"b/zeros.bin": MAX_BUNDLE_BYTES + (4 << 20)}), "zeros.bin"


def case_shape_dim(tmp_path):
    return (_edit(_copy(tmp_path), _set("io.step.inputs.h.shape", [1, 100_000_000_000])),
            "io.step.inputs.h.shape")


def case_vocab_zero(tmp_path):
    return _edit(_copy(tmp_path), _set("model.vocab_size", 0)), "model.vocab_size"


def case_vocab_huge(tmp_path):
    return _edit(_copy(tmp_path), _set("model.vocab_size", 10**12)), "model.vocab_size"


def case_context(tmp_path):
    return _edit(_copy(tmp_path, "transformer"), _set("context", 100_000_000_000)), "context"


def case_cache_product(tmp_path):
    def change(manifest):
        manifest["context"] = 65_536
        manifest["model"].update(d_model=65_536, num_layers=256, num_heads=1)
    return _edit(_copy(tmp_path, "transformer"), change), "context"


def case_top_k_type(tmp_path):
    return _edit(_copy(tmp_path), _set("sampling", {"top_k": "all"})), "sampling.top_k"


CASES = [case_dotdot, case_absolute, case_nested_dotdot, case_drive, case_symlink,
         case_wrong_type, case_external_data, case_zip_dotdot, case_zip_absolute,
         case_zip_bomb, case_shape_dim, case_vocab_zero, case_vocab_huge, case_context,
         case_cache_product, case_top_k_type]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_hostile_bundle_refused_by_the_cli(case, tmp_path):
    bundle, field = case(tmp_path)
    work = tmp_path / "cwd"  # a decoy external-data file where onnxruntime would look
    work.mkdir()
    (work / "w.bin").write_bytes(np.full(16, 7.0, np.float32).tobytes())
    out = tmp_path / "out"
    result = subprocess.run(
        [str(CADENZA), "generate", "--bundle", str(bundle), "-o", str(out / "x.mid"),
         "--seconds", "1"],
        cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0] and bundle.name in lines[0], lines[0]
    assert not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["w.bin"]


def test_external_data_refused_before_any_session(tmp_path):
    folder = _copy(tmp_path)
    _external_graph(folder)
    bundle = load_bundle(folder)  # the manifest is fine
    with pytest.raises(BundleError, match=r"graphs\.step.*external data"):
        bundle.graph_bytes("step")


def test_shipped_bundles_load_their_graphs():
    for folder in sorted(p.parent for p in MODELS.glob("*/manifest.yaml")):
        bundle = load_bundle(folder)
        for key in bundle.manifest["graphs"]:
            assert bundle.graph_bytes(key)[:1]


def test_zip_bundle_still_loads(tmp_path):
    bundle = load_bundle(_zip(tmp_path, {}))
    assert bundle.graph_bytes("step")


@pytest.mark.parametrize("name, folder", [
    ("../../x", "_.._x"), ("/etc/passwd", "_etc_passwd"), ("..", "bundle"),
    ("bach rnn|v2\n", "bach_rnn_v2_"), ("ok-name_1.0", "ok-name_1.0")])
def test_safe_name_is_one_plain_folder(name, folder):
    assert safe_name(name) == folder
