"""Hostile input to every subcommand: one clear line, exit code 2, no traceback, nothing written.

Each case is the command line, with placeholders for files the test makes, and a word the
error line must contain (the flag, field or file it is about). argparse's errors are one line
too (cadenza.commands.arguments.Parser): `cadenza: error: argument --x: ... (see ... --help)`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cadenza.cli import main

OUT = ["-o", "{out}"]
GEN = ["generate", "-o", "{out}.mid"]
EVAL = ["eval", "--compare", "{missing}", "-o", "{out}"]
AUDIO = ["audio", "--bundle", "{missing}", "-o", "{out}.wav"]
LIVE = ["live"]
TRAIN = ["train", "performance-rnn", "--out", "{out}"]

CASES: list[tuple[list[str], str]] = [
    # corpus prepare
    (["corpus", "prepare", "--jobs", "0", *OUT], "--jobs"),
    (["corpus", "prepare", "--jobs", "-3", *OUT], "--jobs"),
    (["corpus", "prepare", "--jobs", "10000000000000", *OUT], "--jobs"),
    (["corpus", "prepare", "--limit", "0", *OUT], "--limit"),
    (["corpus", "prepare", "--limit", "-1", *OUT], "--limit"),
    (["corpus", "prepare", "--max-pieces-per-source", "0", *OUT], "--max-pieces-per-source"),
    (["corpus", "prepare", "-o", "{file}"], "-o"),
    (["corpus", "prepare", "-o", "{under_file}"], "-o"),
    (["corpus", "prepare", "{missing}", *OUT], "missing"),
    (["corpus", "prepare", "{file}", *OUT], "file.txt"),
    # corpus render
    (["corpus", "render", "--sample-rate", "0", *OUT], "--sample-rate"),
    (["corpus", "render", "--sample-rate", "-24000", *OUT], "--sample-rate"),
    (["corpus", "render", "--sample-rate", "1000000000000", *OUT], "--sample-rate"),
    (["corpus", "render", "--clip-seconds", "nan", *OUT], "--clip-seconds"),
    (["corpus", "render", "--clip-seconds", "inf", *OUT], "--clip-seconds"),
    (["corpus", "render", "--clip-seconds", "-inf", *OUT], "--clip-seconds"),
    (["corpus", "render", "--clip-seconds", "0", *OUT], "--clip-seconds"),
    (["corpus", "render", "--clip-seconds", "1e300", *OUT], "--clip-seconds"),
    (["corpus", "render", "--clips-per-piece", "0", *OUT], "--clips-per-piece"),
    (["corpus", "render", "--jobs", "0", *OUT], "--jobs"),
    (["corpus", "render", "--limit", "-5", *OUT], "--limit"),
    (["corpus", "render", "-o", "{file}"], "-o"),
    (["corpus", "render", "-o", "{under_file}"], "-o"),
    # train KIND
    ([*TRAIN, "--config", "{missing}"], "missing"),
    ([*TRAIN, "--config", "{dir}"], "dir"),
    ([*TRAIN, "--config", "{bin}"], "binary"),
    ([*TRAIN, "--config", "{list}"], "list.yaml"),
    ([*TRAIN, "--config", "{scalar}"], "scalar.yaml"),
    ([*TRAIN, "--set", "lr=nan"], "lr"),
    ([*TRAIN, "--set", "lr=inf"], "lr"),
    ([*TRAIN, "--set", "lr=-inf"], "lr"),
    ([*TRAIN, "--set", "lr=garbage"], "lr"),
    ([*TRAIN, "--set", "lr"], "lr"),
    ([*TRAIN, "--set", "no_such_setting=1"], "no_such_setting"),
    (["train", "no-such-kind"], "model"),
    (["train", "performance-rnn", "--out", "{file}"], "--out"),
    # export
    (["export", "{missing}", *OUT], "missing"),
    (["export", "{dir}", *OUT], "dir"),
    (["export", "{bin}", *OUT], "binary"),
    (["export", "{missing}", "-o", "{file}"], "-o"),
    (["export", "{missing}", "-o", "{under_file}"], "-o"),
    (["export", "{file}", *OUT, "--sampling", "temperature"], "--sampling"),
    (["export", "{file}", *OUT, "--sampling", "top_p=nan"], "--sampling"),
    # generate
    ([*GEN, "--seconds", "nan"], "--seconds"),
    ([*GEN, "--seconds", "inf"], "--seconds"),
    ([*GEN, "--seconds", "-inf"], "--seconds"),
    ([*GEN, "--seconds", "-1"], "--seconds"),
    ([*GEN, "--seconds", "0"], "--seconds"),
    ([*GEN, "--seconds", "1e300"], "--seconds"),
    ([*GEN, "--program", "200"], "--program"),
    ([*GEN, "--program", "-1"], "--program"),
    ([*GEN, "--steps", "0"], "--steps"),
    ([*GEN, "--steps", "1000000000000"], "--steps"),
    ([*GEN, "--temperature", "nan"], "--temperature"),
    ([*GEN, "--temperature", "-1"], "--temperature"),
    ([*GEN, "--top-k", "-1"], "--top-k"),
    ([*GEN, "--top-p", "nan"], "--top-p"),
    ([*GEN, "--top-p", "2"], "--top-p"),
    ([*GEN, "--seed", "-1"], "--seed"),
    ([*GEN, "--max-voices", "-1"], "--max-voices"),
    ([*GEN, "--max-voices", "129"], "--max-voices"),
    ([*GEN, "--max-voices", "two"], "--max-voices"),
    ([*GEN, "--mono", "--max-voices", "3"], "--max-voices"),
    ([*GEN, "--primer", "{missing}"], "missing"),
    ([*GEN, "--primer", "{dir}"], "dir"),
    ([*GEN, "--primer", "{bin}"], "binary"),
    (["generate", "-o", "{dir}"], "-o"),
    (["generate", "-o", "{under_file}"], "-o"),
    ([*GEN, "--wav", "{dir}"], "--wav"),
    ([*GEN, "--wav", "{missing}", "--bit-depth", "32"], "--bit-depth"),
    ([*GEN, "--bit-depth", "24"], "--bit-depth"),  # and no --wav to write
    ([*GEN, "--png", "{under_file}"], "--png"),
    ([*GEN, "--bars", "0"], "--bars"),
    ([*GEN, "--bars", "-2"], "--bars"),
    ([*GEN, "--bars", "4", "--seconds", "3"], "--seconds"),
    ([*GEN, "--bpm", "0"], "--bpm"),
    ([*GEN, "--bpm", "nan"], "--bpm"),
    ([*GEN, "--quantize", "5th"], "--quantize"),
    ([*GEN, "--variations", "0"], "--variations"),
    ([*GEN, "--variations", "1000000"], "--variations"),
    ([*GEN, "--variations-as", "zip"], "--variations-as"),
    ([*GEN, "--program", "bass=300"], "--program"),
    ([*GEN, "--program", "=3"], "--program"),
    # live
    ([*LIVE, "--config", "{missing}"], "missing"),
    ([*LIVE, "--config", "{dir}"], "dir"),
    ([*LIVE, "--config", "{bin}"], "binary"),
    ([*LIVE, "--config", "{list}"], "list.yaml"),
    ([*LIVE, "--config", "{scalar}"], "scalar.yaml"),
    ([*LIVE, "--config", "{nan_yaml}"], "bpm"),
    ([*LIVE, "--channel", "0"], "channel"),
    ([*LIVE, "--channel", "17"], "channel"),
    ([*LIVE, "--input-channel", "0"], "channel"),
    ([*LIVE, "--program", "200"], "program"),
    ([*LIVE, "--bpm", "nan"], "bpm"),
    ([*LIVE, "--bpm", "inf"], "bpm"),
    ([*LIVE, "--bpm", "0"], "bpm"),
    ([*LIVE, "--bpm", "1e300"], "bpm"),
    ([*LIVE, "--silence", "nan"], "silence"),
    ([*LIVE, "--silence", "-1"], "silence"),
    ([*LIVE, "--temperature", "inf"], "temperature"),
    ([*LIVE, "--top-p", "nan"], "top_p"),
    ([*LIVE, "--top-k", "-1"], "top_k"),
    ([*LIVE, "--max-voices", "-1"], "max_voices"),
    ([*LIVE, "--max-voices", "1000"], "max_voices"),
    ([*LIVE, "--voices-cc", "200"], "cc.voices"),
    ([*LIVE, "--voices-cc", "64"], "cc.voices"),
    ([*LIVE, "--mono", "--max-voices", "2"], "--max-voices"),
    ([*LIVE, "--end-cc", "200"], "end_cc"),
    ([*LIVE, "--density", "nan"], "density"),
    ([*LIVE, "--loop-bars", "-1"], "loop_bars"),
    ([*LIVE, "--loop-bars", "1000000000000"], "loop_bars"),
    ([*LIVE, "--backing-velocity", "300"], "backing_velocity"),
    ([*LIVE, "--listen-ms", "nan"], "listen_ms"),
    ([*LIVE, "--harmony", "inf"], "harmony"),
    ([*LIVE, "--record", "{dir}"], "record"),
    ([*LIVE, "--record", "{file}"], "record"),
    ([*LIVE, "--record", "{under_file}"], "record"),
    ([*LIVE, "--offset-ms", "nan"], "offset_ms"),
    ([*LIVE, "--offset-ms", "1e300"], "offset_ms"),
    ([*LIVE, "--offset-ms", "-9000"], "offset_ms"),
    ([*LIVE, "--panic-cc", "200"], "cc.panic"),
    ([*LIVE, "--select-cc", "64"], "cc.bundle"),
    ([*LIVE, "--select-cc", "20", "--panic-cc", "20"], "CC 20"),
    ([*LIVE, "--in", "keys:notes,drums"], "input_port"),
    ([*LIVE, "--in", ":clock"], "input_port"),
    ([*LIVE, "--in", "a:clock", "--in", "b:clock"], "input_port"),
    ([*LIVE, "--program", "bass=33"], "part_programs"),
    ([*LIVE, "--program", "bass=300"], "--program"),
    # audio
    ([*AUDIO, "--seconds", "nan"], "--seconds"),
    ([*AUDIO, "--seconds", "inf"], "--seconds"),
    ([*AUDIO, "--seconds", "-1"], "--seconds"),
    ([*AUDIO, "--seconds", "0"], "--seconds"),
    ([*AUDIO, "--seconds", "1e300"], "--seconds"),
    ([*AUDIO, "--cfg", "nan"], "--cfg"),
    ([*AUDIO, "--cfg", "inf"], "--cfg"),
    ([*AUDIO, "--cfg", "-1"], "--cfg"),
    ([*AUDIO, "--temperature", "nan"], "--temperature"),
    ([*AUDIO, "--top-k", "-1"], "--top-k"),
    ([*AUDIO, "--temperature-cc", "200"], "--temperature-cc"),
    ([*AUDIO, "--cfg-cc", "-1"], "--cfg-cc"),
    (["audio", "--bundle", "{missing}", "-o", "{dir}"], "-o"),
    (["audio", "--bundle", "{missing}", "-o", "{under_file}"], "-o"),
    ([*AUDIO, "--continue", "{missing}"], "missing"),
    # eval
    ([*EVAL, "--samples", "0"], "--samples"),
    ([*EVAL, "--samples", "-1"], "--samples"),
    ([*EVAL, "--samples", "1000000000000"], "--samples"),
    ([*EVAL, "--seconds", "nan"], "--seconds"),
    ([*EVAL, "--seconds", "inf"], "--seconds"),
    ([*EVAL, "--seconds", "0"], "--seconds"),
    ([*EVAL, "--primer-seconds", "-1"], "--primer-seconds"),
    ([*EVAL, "--primer-seconds", "nan"], "--primer-seconds"),
    ([*EVAL, "--bpm", "nan"], "--bpm"),
    ([*EVAL, "--bpm", "0"], "--bpm"),
    ([*EVAL, "--bpm", "-inf"], "--bpm"),
    ([*EVAL, "--nll-events", "0"], "--nll-events"),
    ([*EVAL, "--harmony", "nan"], "--harmony"),
    ([*EVAL, "--harmony", "5"], "--harmony"),
    ([*EVAL, "--split", "train"], "--split"),
    ([*EVAL, "--split", "validation"], "--split"),
    (["eval", "--compare", "{missing}", "-o", "{file}"], "-o"),
    (["eval", "--compare", "{missing}", "-o", "{under_file}"], "-o"),
    (EVAL, "missing"),
    # demo
    (["demo", "-o", "{file}"], "-o"),
    (["demo", "-o", "{under_file}"], "-o"),
    (["demo", *OUT, "--primer", "{missing}"], "missing"),
    (["demo", *OUT, "--primer", "{dir}"], "dir"),
    (["demo", *OUT, "--seed", "-1"], "--seed"),
    # plugins, ports: no arguments to get wrong but unknown ones
    (["plugins", "--bogus"], "--bogus"),
    (["ports", "--bogus"], "--bogus"),
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4 + b"\xff\xfe\x00\x81")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "scalar.yaml").write_text("42\n")
    (tmp_path / "nan.yaml").write_text("bpm: .nan\n")
    return {
        "dir": str(tmp_path / "dir"),
        "file": str(tmp_path / "file.txt"),
        "bin": str(tmp_path / "binary.bin"),
        "list": str(tmp_path / "list.yaml"),
        "scalar": str(tmp_path / "scalar.yaml"),
        "nan_yaml": str(tmp_path / "nan.yaml"),
        "missing": str(tmp_path / "missing.mid"),
        "under_file": str(tmp_path / "file.txt" / "out.mid"),
        "out": str(tmp_path / "out"),
    }


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "names"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_argument_is_one_line_exit_2(argv, names, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default output folder (demo-out) would land here
    monkeypatch.setenv("CADENZA_SOUNDFONT", files["missing"])
    argv = [a.format(**files) for a in argv]
    before = _tree(tmp_path)
    code, err = _run(argv, capsys)
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines, "no error line"
    last = lines[-1]
    assert len(lines) == 1 and last.startswith("cadenza: error: "), err  # argparse's too
    assert names in last, err
    assert _tree(tmp_path) == before, "an output was written"


def test_the_table_covers_every_subcommand():
    from cadenza.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {argv[0] for argv, _ in CASES}
    assert set(sub.choices) <= covered
    assert {argv[1] for argv, _ in CASES if argv[0] == "corpus"} == {"prepare", "render"}


def test_an_unwritable_output_parent_is_refused(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = _run(["generate", "-o", str(locked / "out.mid")], capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2 and "-o" in err.strip().splitlines()[-1], err
