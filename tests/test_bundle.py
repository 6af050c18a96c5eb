"""Bundles: what export writes loads; anything broken is refused with one line naming it."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from cadenza.bundle import load_bundle
from cadenza.errors import BundleError
from cadenza.plugins import load_generator
from tests.helpers import edit_manifest


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "copy")


def test_exported_bundle_loads_with_its_figures(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert bundle.plugin == "performance-rnn" and bundle.name == "tiny"
    assert bundle.representation["velocity_bins"] == 32
    assert bundle.training["test_nll"] > 0 and bundle.training["steps"] == 40
    assert bundle.manifest["parity"]["max_abs_logit_diff"] <= 1e-4


def test_a_zip_of_a_bundle_loads_and_runs(tiny_bundle, tmp_path):
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in tiny_bundle.iterdir():
            z.write(f, f"tiny/{f.name}")
    generator = load_generator(archive, seed=0)
    generator.prime([])
    assert 0 <= generator.step() < 388


def field_removed(key):
    return lambda m: m.pop(key)


@pytest.mark.parametrize(
    "change, message",
    [
        (field_removed("plugin"), "missing field 'plugin'"),
        (field_removed("io"), "missing field 'io'"),
        (lambda m: m.update(format="cadenza-bundle/9"), "field 'format'"),
        (
            lambda m: m["io"]["step"]["inputs"]["h"].update(dtype="float64"),
            "io.step.inputs.h.dtype",
        ),
        (lambda m: m["io"]["step"]["inputs"]["h"].update(shape=[2, 0]), "io.step.inputs.h.shape"),
        (lambda m: m["io"]["step"]["inputs"]["h"].update(shape=["a b"]), "io.step.inputs.h.shape"),
        (lambda m: m["sampling"].update(temperature=-1), "sampling.temperature"),
        (lambda m: m["graphs"].update(step="nope.onnx"), "'nope.onnx' is missing"),
    ],
)
def test_bad_manifest_fields_are_named(bundle_copy, change, message):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=message.replace(".", r"\.")) as error:
        load_bundle(bundle_copy)
    assert "\n" not in str(error.value)


def test_manifest_io_names_that_the_graph_lacks_are_refused(bundle_copy):
    edit_manifest(
        bundle_copy,
        lambda m: m["io"]["step"]["inputs"].update(state=m["io"]["step"]["inputs"].pop("h")),
    )
    with pytest.raises(BundleError, match="io.step.inputs"):
        load_generator(bundle_copy)


def test_corrupt_graph_is_refused_naming_the_file(bundle_copy):
    graph = bundle_copy / "step.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(BundleError, match="step.onnx: not a loadable ONNX graph"):
        load_generator(bundle_copy)


def test_missing_bundle_and_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="no manifest.yaml"):
        load_bundle(tmp_path)


def test_a_shipped_bundle_is_found_by_its_name(tmp_path, monkeypatch):
    shipped = tmp_path / "models" / "mine"
    shipped.mkdir(parents=True)
    (shipped / "manifest.yaml").write_text("format: cadenza-bundle/1\n")
    monkeypatch.setenv("CADENZA_MODELS", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError) as found:  # found, then validated: not a whole bundle
        load_bundle("mine")
    assert str(shipped) in str(found.value) and "no such bundle" not in str(found.value)
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle("theirs")


def test_unknown_plugin_is_named(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(plugin="theremin"))
    with pytest.raises(BundleError, match="no installed plugin 'theremin'"):
        load_generator(bundle_copy)


def test_bundles_are_looked_for_in_the_environment_then_the_package(tmp_path, monkeypatch):
    """$CADENZA_MODELS first, then cadenza.models (the repository's models/, which a wheel
    carries and an editable install maps), each folder once."""
    from importlib import resources

    from cadenza import bundle

    package = resources.files("cadenza.models") if bundle._package_models() else None
    monkeypatch.setenv("CADENZA_MODELS", str(tmp_path))
    dirs = bundle.models_dirs()
    assert dirs[0] == tmp_path
    assert len({d.resolve() for d in dirs}) == len(dirs)
    shipped = Path(bundle.__file__).resolve().parent.parent / "models"
    assert [d.resolve() for d in dirs[1:]] == [shipped.resolve()]  # package and checkout: one
    if package is not None:
        assert Path(package).resolve() == shipped.resolve()
    assert bundle.default_bundle_path("performance-rnn") == dirs[1] / "performance-rnn"


def test_a_package_not_on_disk_is_passed_over(monkeypatch):
    """A zipped install: importlib.resources gives no folder, so only $CADENZA_MODELS (and a
    checkout) are searched; nothing is extracted."""
    import zipfile as zf
    from importlib import resources

    from cadenza import bundle

    monkeypatch.setattr(resources, "files", lambda name: zf.Path(zf.ZipFile(io.BytesIO(
        _zip_with("cadenza/models/__init__.py"))), "cadenza/models/"))
    assert bundle._package_models() is None


def _zip_with(name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(name, "")
    return out.getvalue()


def test_no_default_bundle_says_what_to_do_and_never_make_outside_a_checkout(
    tmp_path, monkeypatch
):
    from cadenza import bundle

    monkeypatch.delenv("CADENZA_MODELS", raising=False)
    with pytest.raises(BundleError) as in_checkout:
        bundle.default_bundle_path("theremin")
    message = str(in_checkout.value)
    assert "--bundle" in message and "CADENZA_MODELS" in message and "make models" in message
    # An installed package: no pyproject.toml or Makefile beside it, no bundles in it.
    installed = tmp_path / "site-packages" / "cadenza" / "bundle.py"
    monkeypatch.setattr(bundle, "__file__", str(installed))
    monkeypatch.setattr(bundle, "_package_models", lambda: None)
    assert bundle.models_dirs() == []
    with pytest.raises(BundleError) as installed_error:
        bundle.default_bundle_path("performance-rnn")
    message = str(installed_error.value)
    assert "--bundle" in message and "reinstall cadenza" in message
    assert "make" not in message and "\n" not in message
