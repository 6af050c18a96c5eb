"""The `codec-lm` plugin: text-conditioned audio, a codec LM over codebook patterns (MusicGen).

The bundle holds three graphs: the LM's `step` (one pattern step's K tokens against the cache;
at position 0 the text embedding instead, the condition that cache slot 0 keeps), and the
codec's `encoder` (audio -> codes, for continuation) and `decoder` (codes -> audio). Text prompts
become embeddings through all-MiniLM-L6-v2 (cadenza.plugins.text_encoder).

One step of the pattern (delay by default) gives one token per codebook; with the delay
pattern codebook k of frame t is placed at step t + k, so after step s the frame s - K + 1 is
complete. Classifier-free guidance runs the LM twice per step, on the prompt and on the null
(zero) text, each with its own cache, and mixes the logits on the host (`cfg`, a live knob
as temperature and top-k are). The decoder is causal: a chunk of frames decodes with
`decoder_context_frames` frames before it, the same samples as decoding all at once, so
audio streams chunk by chunk with no seams.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.errors import BundleError
from cadenza.plugins.base import AudioGenerator, create_session
from cadenza.plugins.codebook_patterns import get_pattern
from cadenza.plugins.manifests import CodecLMManifest, CodecLMSampling
from cadenza.plugins.sampling import guided, sample_rows
from cadenza.plugins.text_encoder import TextEncoder, find_text_encoder
from cadenza.plugins.transformer import KVCache

DEFAULT_CFG = CodecLMSampling().cfg
CHUNK_FRAMES = 10  # frames decoded at a time while streaming: 0.2 s at 50 frames a second


class CodecLM(AudioGenerator):
    plugin = "codec-lm"
    manifest_type = CodecLMManifest
    manifest: CodecLMManifest

    def __init__(
        self,
        bundle: Bundle,
        *,
        seed: int | None = None,
        context: int | None = None,
        text_encoder: TextEncoder | None = None,
        threads: int = 1,
    ):
        super().__init__(bundle, seed=seed)
        rep, model = self.manifest.representation, self.manifest.model
        self.sample_rate = rep.sample_rate
        self.hop = rep.hop
        self.num_codebooks = rep.num_codebooks
        self.codebook_size = rep.codebook_size
        self.decoder_context = rep.decoder_context_frames
        self.pattern = get_pattern(rep.pattern, self.num_codebooks)
        self.text_dim = model.text_dim
        self.cfg = self.manifest.sampling.cfg
        self.sessions = {
            key: create_session(bundle, key, threads)
            for key in ("step", "encoder", "decoder")
        }
        size = context or self.manifest.context
        if not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise BundleError(bundle.path / "manifest.yaml",
                              f"field 'context' should be an int of at least 2, got {size!r}")
        self.context = size
        self.caches = {name: KVCache(model.num_layers, model.num_heads, model.head_dim, size)
                       for name in ("text", "null")}
        self._text_encoder = text_encoder
        self.prompt: str | None = None
        self.text = np.zeros((1, self.text_dim), dtype=np.float32)
        self._no_text = np.zeros((1, self.text_dim), dtype=np.float32)  # read at position 0 only
        self._special = np.full(self.num_codebooks, self.codebook_size, dtype=np.int64)
        self.reset()

    # ----- the text prompt -----
    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:  # found on first use: a bundle without prompts needs none
            self._text_encoder = find_text_encoder(self.bundle.path)
        return self._text_encoder

    @text_encoder.setter
    def text_encoder(self, encoder: TextEncoder) -> None:
        self._text_encoder = encoder

    def embed(self, prompt: str | None) -> np.ndarray:
        """(1, text_dim) float32: the prompt's sentence embedding; zeros (the null condition
        the LM learnt for classifier-free guidance) for None or an empty prompt."""
        if not prompt or not prompt.strip():
            return np.zeros((1, self.text_dim), dtype=np.float32)
        return self.text_encoder.embed([prompt]).astype(np.float32)

    def set_prompt(self, prompt: str | None) -> None:
        """Condition what comes next on `prompt`, while playing: slot 0 of the prompt's cache
        (the condition) is replaced, the codes of the window stay."""
        self.prompt, self.text = prompt, self.embed(prompt)
        cache = self.caches["text"]
        logits, k, v = self._run(cache, self.text, position=0, empty=True)
        cache.k[:, :, 0], cache.v[:, :, 0] = k, v
        if cache.next_position == 1:
            self.logits["text"] = logits[0]

    # ----- the Generator contract -----
    def reset(self) -> None:
        self.prime(np.zeros((self.num_codebooks, 0), dtype=np.int64))

    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        """Start over from `events`, codes (K, frames) to continue (none: from silence), under
        `conditions["prompt"]` (else the prompt in force)."""
        if conditions and "prompt" in conditions:
            self.prompt = conditions["prompt"]
            self.text = self.embed(self.prompt)
        codes = np.asarray(events, dtype=np.int64).reshape(self.num_codebooks, -1)
        self.logits: dict[str, np.ndarray] = {}
        for name, text in (("text", self.text), ("null", np.zeros_like(self.text))):
            cache = self.caches[name]
            cache.clear()
            logits, k, v = self._run(cache, text, position=0)
            cache.append(k, v)
            self.logits[name] = logits[0]
        self.step_index = 0
        # A frame's codes lie within `reach` steps of the step that completes it.
        reach = int(self.pattern.frame_steps(1).max()) + 1
        self.history: deque[np.ndarray] = deque(maxlen=reach + 1)  # the last steps' tokens
        self.codes: list[np.ndarray] = []  # (K,) per frame, from frame `self.first_frame`
        self.first_frame = 0
        # The prompt in pattern form: its codes are forced, not sampled; the steps whose every
        # token it fixes are taken in now.
        self.known = self.pattern.build(codes, self.codebook_size)
        self.prompt_frames = codes.shape[1]  # new audio starts after them
        while self.step_index < self.known.shape[1] and self._determined(self.step_index).all():
            self.extend(self.known[:, self.step_index : self.step_index + 1])

    def step(self) -> np.ndarray:
        """One pattern step: K tokens (sampled, or forced where the pattern or the prompt
        fixes them) taken into both caches; returns them."""
        s = self.step_index
        logits = self.logits["text"]
        if self.prompt and self.cfg != 1.0:
            logits = guided(logits, self.logits["null"], self.cfg)
        tokens = sample_rows(logits, self.knobs, self.rng)
        tokens[~self.pattern.placed(s)] = self.codebook_size
        if s < self.known.shape[1]:
            forced = self.known[:, s] != self.codebook_size
            tokens[forced] = self.known[forced, s]
        self.extend(tokens[:, None])
        return tokens

    def extend(self, events: Any) -> None:
        """Take pattern steps (K, n) into the context as they are, without sampling."""
        for tokens in np.asarray(events, dtype=np.int64).reshape(self.num_codebooks, -1).T:
            for name, cache in self.caches.items():
                logits, k, v = self._run(cache, self._no_text, cache.next_position, tokens)
                cache.append(k, v)
                self.logits[name] = logits[0]
            self.history.append(tokens)
            self.step_index += 1
            self._collect_frames()

    def context_state(self) -> tuple:
        return (
            {n: c.snapshot() for n, c in self.caches.items()},
            dict(self.logits),
            self.step_index,
            list(self.history),
            list(self.codes),
            self.first_frame,
        )

    def restore_context(self, state: tuple) -> None:
        caches, logits, self.step_index, history, codes, self.first_frame = state
        for name, cache in caches.items():
            self.caches[name].restore(cache)
        self.logits, self.codes = dict(logits), list(codes)
        self.history.clear()
        self.history.extend(history)

    @property
    def frames(self) -> int:
        """Frames whose codes are complete, prompt included."""
        return self.first_frame + len(self.codes)

    # ----- audio -----
    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Mono float32 samples at the bundle's rate -> codes (K, frames), whole frames only."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        usable = len(audio) // self.hop * self.hop
        if usable == 0:
            return np.zeros((self.num_codebooks, 0), dtype=np.int64)
        codes = self.sessions["encoder"].run(None, {"audio": audio[None, None, :usable]})[0]
        return codes[0].astype(np.int64)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Mono float32 samples of codes (K', frames), decoded at once (whole clips)."""
        codes = np.asarray(codes, dtype=np.int64)[None]
        return self.sessions["decoder"].run(None, {"codes": codes})[0][0, 0]

    def decode(self, first: int, last: int) -> np.ndarray:
        """Samples of frames [first, last), decoded with up to `decoder_context` frames
        before them: the samples that decoding everything at once gives."""
        begin = max(first - self.decoder_context, self.first_frame)
        codes = np.stack(self.codes[begin - self.first_frame : last - self.first_frame], axis=1)
        audio = self.sessions["decoder"].run(None, {"codes": codes[None]})[0]
        return audio[0, 0, (first - begin) * self.hop :]

    def stream(self, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """Endless mono float32 chunks of `chunk_frames` frames of new audio, after what
        `prime` was given. Knobs (temperature, top-k, cfg, the prompt) apply from the next step."""
        # The last prompt frames complete only as the first new ones are generated (a
        # pattern spreads a frame over steps): new audio starts after the prompt's.
        done = max(self.frames, self.prompt_frames)
        while True:
            while self.frames < done + chunk_frames:
                self.step()
            yield self.decode(done, done + chunk_frames)
            done += chunk_frames
            # Only the decoder's context is needed again: memory stays flat for hours.
            drop = done - self.decoder_context - self.first_frame
            if drop > 0:
                del self.codes[:drop]
                self.first_frame += drop

    def generate_audio(self, seconds: float, chunk_frames: int = CHUNK_FRAMES) -> np.ndarray:
        """`seconds` of new audio at once (what `cadenza audio -o out.wav` writes)."""
        samples = round(seconds * self.sample_rate)
        chunks, total = [], 0
        for chunk in self.stream(chunk_frames):
            chunks.append(chunk)
            total += len(chunk)
            if total >= samples:
                break
        return np.concatenate(chunks)[:samples]

    # ----- internals -----
    def _run(self, cache: KVCache, text: np.ndarray, position: int,
             tokens: np.ndarray | None = None, empty: bool = False):
        """The step graph at `position` against `cache` (or, `empty`, against no cache: a
        condition computed afresh); position 0 takes the text, the others the tokens."""
        if tokens is None:
            tokens = self._special
        positions = np.full_like(cache.positions, -1) if empty else cache.positions
        return self.sessions["step"].run(None, {
            "tokens": tokens.reshape(1, -1), "text": text, "position": np.array([position]),
            "cache_k": cache.k, "cache_v": cache.v, "cache_positions": positions,
        })

    def _determined(self, s: int) -> np.ndarray:
        """(K,) bool: step s's tokens that the prompt or the pattern fixes."""
        return ~self.pattern.placed(s) | (self.known[:, s] != self.codebook_size)

    def _collect_frames(self) -> None:
        """Append the frames the last step completed, read off the recent steps."""
        oldest = self.step_index - len(self.history)
        while self.frames < self.pattern.complete_frames(self.step_index):
            steps = self.pattern.frame_steps(self.frames)
            self.codes.append(np.array([self.history[s - oldest][k] for k, s in enumerate(steps)]))
