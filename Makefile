# Cadenza: `make demo` plays the shipped model, `make test` runs the tests.
# Both set up what they need on a fresh Debian machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q
# System packages: PortAudio for sounddevice, a General MIDI SoundFont for rendering, and
# JACK, whose dummy backend gives real MIDI ports on a machine with no MIDI hardware.
APT_PACKAGES := libportaudio2 timgm6mb-soundfont jackd2
# The CPU build of torch: a range alone would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
DEMO_OUT := demo-out
TEST_BUILT := .test-built

.PHONY: demo test models bench lint sysdeps clean

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The runtime: numpy + onnxruntime + mido..., no torch; with [audio], `cadenza audio --prompt`
# (the text encoder ships in the package). tinysoundfont goes in without its pyaudio
# dependency: we render offline and play through sounddevice.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[render,audio]'
	$(PIP) --no-deps 'tinysoundfont>=0.3'
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) $(TORCH)
	$(PIP) -e '.[render,train,dev,audio]'
	touch $@

# The live engine for real: a simulated player plays a bundled phrase into `cadenza in`,
# Cadenza answers on `cadenza out`; the demo records it (MIDI, WAV, piano roll) and prints
# the latency figures. A JACK server (dummy backend) is started if no MIDI system runs.
demo: sysdeps $(VENV)/.runtime
	$(BIN)/cadenza demo -o $(DEMO_OUT)

test: sysdeps $(VENV)/.dev
	$(BIN)/ruff check cadenza tests benchmarks scripts examples
	# Both cores; the tests that time a live engine to the millisecond then run alone, as
	# a musician's machine would run it (beside the others, two busy workers starve it).
	# The tiny models the fixtures train are built once for both runs, in TEST_BUILT.
	rm -rf $(TEST_BUILT)
	CADENZA_TEST_BUILT=$(abspath $(TEST_BUILT)) $(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not timing"
	CADENZA_TEST_BUILT=$(abspath $(TEST_BUILT)) $(BIN)/python -m pytest -q -m timing

# Train the shipped default bundle on the embedded corpus (not part of CI).
models: $(VENV)/.dev
	$(BIN)/cadenza corpus prepare music21:bach -o data/corpus/music21-bach
	$(BIN)/cadenza corpus prepare music21:bach music21:palestrina music21:folk \
		--max-pieces-per-source 500 -o data/corpus/music21-styles
	# The style critic that `cadenza eval` runs: which of the three styles a piece sounds like.
	$(BIN)/cadenza train style-critic --data data/corpus/music21-styles --out models/style-critic
	# The instrument critic that judges codec-lm's audio: which GM instrument a clip sounds
	# like, and its embeddings for a Frechet distance to real clips (our FAD).
	$(BIN)/cadenza corpus render music21:bach music21:palestrina music21:folk \
		--max-pieces-per-source 150
	$(BIN)/cadenza train instrument-critic \
		--data data/audio/music21-bach+music21-palestrina+music21-folk --out models/instrument-critic
	# codec-lm: the codec on the rendered clips, then the LM on its codes (the captions embedded
	# by the text encoder cadenza ships), one bundle of both.
	$(BIN)/cadenza train codec --config configs/codec.yaml
	$(BIN)/cadenza train codec-lm --config configs/codec-lm.yaml
	$(BIN)/cadenza export runs/codec-lm/best.pt -o models/codec-lm --name music21-gm-codec-lm
	$(BIN)/cadenza train performance-rnn --config configs/performance-rnn.yaml
	# The sampling defaults: top_p and temperature chosen on the validation split, the voices
	# cap the training corpus's 99th percentile (docs/EVAL.md, "The sampling defaults").
	$(BIN)/cadenza export runs/performance-rnn/best.pt -o models/performance-rnn \
		--name bach-chorales-lstm --sampling temperature=0.9 top_p=0.9 max_voices=10
	$(BIN)/cadenza train transformer --config configs/transformer.yaml
	$(BIN)/cadenza export runs/transformer/best.pt -o models/transformer \
		--name bach-chorales-transformer --sampling max_voices=10
	# The backing models: the chorales as soprano (the player) over alto, tenor and bass; and
	# their harmony re-voiced as a bass line and chords under the melody.
	$(BIN)/cadenza corpus prepare music21:bach --representation parts \
		-o data/corpus/bach-parts-excerpts
	$(BIN)/cadenza train backing --config configs/backing.yaml
	$(BIN)/cadenza export runs/backing/best.pt -o models/backing --name bach-chorales-backing
	$(BIN)/cadenza corpus prepare music21:bach --representation parts --arrangement bass-chords \
		-o data/corpus/bach-bass-chords
	$(BIN)/cadenza train backing --config configs/backing-chords.yaml
	$(BIN)/cadenza export runs/backing-chords/best.pt -o models/backing-chords \
		--name bach-bass-and-chords
	# The VAE reads the pieces onto a bar grid itself (cached in data/vae/), one core.
	nice -n 10 $(BIN)/cadenza train vae --config configs/vae.yaml
	$(BIN)/cadenza export runs/vae/best.pt -o models/vae --name bach-folk-vae
	# The lead-line model: Magenta's lookback Melody RNN on 2,000 of music21's monophonic
	# tunes (Essen, O'Neill's, Aird's Airs, Ryan's Mammoth; parsing all 12,762 takes an hour).
	$(BIN)/cadenza corpus prepare music21:tunes --representation melody \
		--max-pieces-per-source 2000 -o data/corpus/music21-tunes-melody
	nice -n 10 $(BIN)/cadenza train melody-rnn --config configs/melody-rnn.yaml
	$(BIN)/cadenza export runs/melody-rnn/best.pt -o models/melody-rnn --name music21-tunes-lookback

bench: $(VENV)/.dev
	$(PIP) -e '.[bench]'
	$(BIN)/python benchmarks/step_latency.py
	$(BIN)/python benchmarks/corpus_speed.py
	$(BIN)/python benchmarks/live_latency.py
	$(BIN)/python benchmarks/vae_latency.py
	$(BIN)/python benchmarks/backing_soak.py
	$(BIN)/python benchmarks/backing_latency.py
	$(BIN)/python benchmarks/audio_rtf.py
	$(BIN)/python benchmarks/input_flood.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
