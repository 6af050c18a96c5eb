"""Each plugin's manifest section: the shipped bundles read through it, a bad field is one line."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cadenza.bundle import MANIFEST, load_bundle
from cadenza.critic_manifests import InstrumentCriticManifest, StyleCriticManifest
from cadenza.errors import BundleError
from cadenza.manifest import Section
from cadenza.plugins import (
    AudioGenerator,
    BackingGenerator,
    EventGenerator,
    load_generator,
    plugin_classes,
)
from cadenza.plugins.manifests import (
    BackingManifest,
    CodecLMManifest,
    MelodyRNNManifest,
    PerformanceRNNManifest,
    TransformerManifest,
    VAEManifest,
)
from tests.helpers import edit_manifest

MODELS = Path(__file__).resolve().parents[2] / "models"
SECTIONS: dict[str, type[Section]] = {
    "performance-rnn": PerformanceRNNManifest,
    "transformer": TransformerManifest,
    "backing": BackingManifest,
    "vae": VAEManifest,
    "codec-lm": CodecLMManifest,
    "melody-rnn": MelodyRNNManifest,
    "style-critic": StyleCriticManifest,
    "instrument-critic": InstrumentCriticManifest,
}
SHIPPED = sorted(p.parent.name for p in MODELS.glob(f"*/{MANIFEST}"))
KIND = {"performance-rnn": EventGenerator, "transformer": EventGenerator, "vae": EventGenerator,
        "backing": BackingGenerator, "codec-lm": AudioGenerator, "melody-rnn": EventGenerator}


def shipped_manifest(name: str) -> dict:
    return yaml.safe_load((MODELS / name / MANIFEST).read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_bundle_reads_through_its_section_and_writes_back_the_same(name):
    manifest = shipped_manifest(name)
    kind = SECTIONS[manifest["plugin"]]
    section = kind.from_dict(manifest, MODELS / name / MANIFEST)
    assert kind.from_dict(section.to_dict(), "again") == section
    for key, value in section.to_dict().items():  # as written, fields it lacked aside
        if key in manifest:
            assert manifest[key] == value, key


@pytest.mark.parametrize("name", [n for n in SHIPPED if shipped_manifest(n)["plugin"] in KIND])
def test_every_shipped_generator_loads_and_says_what_it_makes(name):
    generator = load_generator(MODELS / name, seed=0)
    kind = KIND[generator.plugin]
    assert isinstance(generator, kind)
    assert sum(isinstance(generator, k) for k in (EventGenerator, BackingGenerator,
                                                  AudioGenerator)) == 1
    assert isinstance(generator.manifest, SECTIONS[generator.plugin])


def test_every_plugin_declares_its_section():
    for name, plugin in plugin_classes().items():
        assert plugin.manifest_type is SECTIONS[name]


def change(path: str, value) -> Callable[[dict], None]:
    """Set the field at dotted `path` (None: remove it)."""
    *parents, last = path.split(".")

    def apply(manifest: dict) -> None:
        for key in parents:
            manifest = manifest[key]
        if value is None:
            manifest.pop(last)
        else:
            manifest[last] = value

    return apply


BAD = [  # (shipped bundle, change, the field the error names)
    ("performance-rnn", change("representation.steps_per_second", 0),
     "representation.steps_per_second"),
    ("performance-rnn", change("representation.velocity_bins", 200),
     "representation.velocity_bins"),
    ("performance-rnn", change("representation.max_shift_steps", -1),
     "representation.max_shift_steps"),
    ("performance-rnn", change("model.hidden_size", "big"), "model.hidden_size"),
    ("performance-rnn", change("sampling.top_p", 0), "sampling.top_p"),
    ("transformer", change("model.num_heads", 0), "model.num_heads"),
    ("transformer", change("model.num_layers", -2), "model.num_layers"),
    ("transformer", change("model.d_model", 130), "model.d_model"),
    ("transformer", change("model.styles", None), "model.styles"),
    ("transformer", change("model", None), "model"),
    ("transformer", change("context", 1), "context"),
    ("transformer", change("context", 1 << 30), "context"),
    ("transformer", change("sampling.top_k", -1), "sampling.top_k"),
    ("backing", change("representation.kind", "performance"), "representation.kind"),
    ("backing", change("representation.parts", 0), "representation.parts"),
    ("backing", change("model.vocab_size", 7), "model.vocab_size"),
    ("backing", change("backing.voices", [1, 1]), "backing.voices"),
    ("backing", change("backing.ranges", [[60, 64], [55, 57], [40, 128]]),
     "backing.ranges[2][1]"),
    ("backing", change("backing.harmony", [0.5] * 11), "backing.harmony"),
    ("vae", change("representation.min_pitch", -1), "representation.min_pitch"),
    ("vae", change("representation.bars", 0), "representation.bars"),
    ("vae", change("representation.beat_unit", 3), "representation.beat_unit"),
    ("vae", change("representation.default_bpm", 0), "representation.default_bpm"),
    ("vae", change("style_codes.bach", [0.0, 1.0]), "style_codes.bach"),
    ("codec-lm", change("representation.hop", 0), "representation.hop"),
    ("codec-lm", change("representation.pattern", "spiral"), "representation.pattern"),
    ("codec-lm", change("representation.sample_rate", None), "representation.sample_rate"),
    ("codec-lm", change("model.text_dim", 0), "model.text_dim"),
    ("codec-lm", change("sampling.cfg", -1), "sampling.cfg"),
    ("codec-lm", change("text_encoder.embedding_dim", 128), "text_encoder.embedding_dim"),
    ("style-critic", change("model.window", 0), "model.window"),
    ("style-critic", change("model.styles", "bach"), "model.styles"),
    ("instrument-critic", change("representation.n_fft", 0), "representation.n_fft"),
    ("instrument-critic", change("model.channels", []), "model.channels"),
]


@pytest.mark.parametrize("name, edit, field_name", BAD,
                         ids=[f"{n}-{f}" for n, _, f in BAD])
def test_a_bad_field_is_refused_in_one_line_naming_it(name, edit, field_name):
    manifest = copy.deepcopy(shipped_manifest(name))
    edit(manifest)
    where = MODELS / name / MANIFEST
    with pytest.raises(BundleError) as error:
        SECTIONS[manifest["plugin"]].from_dict(manifest, where)
    message = str(error.value)
    assert message.startswith(f"{where}: field '{field_name}' "), message
    assert "\n" not in message


@pytest.mark.parametrize("edit, field_name", [
    (change("representation.steps_per_second", 0), "representation.steps_per_second"),
    (change("sampling.top_p", 0), "sampling.top_p"),
    (change("model.num_layers", -2), "model.num_layers"),
])
def test_a_bundle_with_a_bad_field_does_not_load(tmp_path, edit, field_name):
    bundle = shutil.copytree(MODELS / "performance-rnn", tmp_path / "bad")
    edit_manifest(bundle, edit)
    with pytest.raises(BundleError, match=f"field '{field_name}' ") as error:
        load_generator(bundle)
    assert "\n" not in str(error.value)


def test_a_manifest_written_before_a_field_gets_its_default(tmp_path):
    bundle = shutil.copytree(MODELS / "transformer", tmp_path / "old")
    edit_manifest(bundle, lambda m: [m.pop("context"), m.pop("sampling"),
                                     m["model"].pop("style_dropout")])
    generator = load_generator(bundle)
    assert generator.cache.size == 1024 and generator.knobs.top_p == 1.0
    assert load_bundle(bundle).plugin == "transformer"
