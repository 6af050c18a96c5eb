"""Each generator plugin's manifest section: what its exporter writes and its runtime reads.

One dataclass per plugin (cadenza.manifest explains the machinery); the envelope every bundle
has (format, plugin, name, graphs, io, training, parity) is cadenza.bundle's. No torch and no
onnxruntime here: exporters import these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from cadenza.events import PerformanceCodec
from cadenza.manifest import (
    MAX_STYLE_GUIDANCE,
    AttentionModel,
    FieldError,
    PerformanceRepresentation,
    PluginManifest,
    Sampling,
    Section,
    setting,
    size,
)
from cadenza.melody import VARIANTS, MelodyEncoding
from cadenza.parts import BACKING_FIRST, ORDERS, PartsCodec, default_names
from cadenza.pianoroll import Grid
from cadenza.plugins.codebook_patterns import PATTERN_NAMES

MAX_CONTEXT = 1 << 16  # cache slots: a (layers, heads, context, head_dim) array is allocated
DEFAULT_CONTEXT = 1024  # a transformer bundle made before `context` was written
MAX_CACHE_BYTES = 4 << 30  # a key/value cache (layers x 2 x context x d_model float32)
MAX_SEGMENT_STEPS = 1 << 14  # a piano-roll segment's steps (a (steps, 3, pitches) roll)
MAX_DECODER_SAMPLES = 1 << 24  # the audio a codec decoder is handed before a chunk
PITCH = {"low": 0, "high": 127}


# --- performance-rnn ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RNNModel(Section):
    """An event LSTM's dimensions (its state's shape is also in io.step.inputs.h)."""

    vocab_size: int = size()
    hidden_size: int = size(high=65_536)
    num_layers: int = size(high=256)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PerformanceRNNManifest(PluginManifest):
    representation: PerformanceRepresentation = field(default_factory=PerformanceRepresentation)
    model: RNNModel | None = None  # a bundle made before it was written has none


def check_cache(model: AttentionModel, context: int | None) -> None:
    """Each size is bounded alone; their product, the cache allocated, is bounded here."""
    if context is None:
        return
    need = 2 * model.num_layers * context * model.d_model * 4
    if need > MAX_CACHE_BYTES:
        raise FieldError("context", f"({context}) with {model.num_layers} layers of "
                                    f"{model.d_model} needs a {need >> 20} MB cache (at most "
                                    f"{MAX_CACHE_BYTES >> 20} MB)")


# --- transformer --------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TransformerModel(AttentionModel):
    """A Music Transformer: its vocabulary, then one conditioning token per style ("any"
    first, then the styles it was trained on)."""

    vocab_size: int = size()
    styles: tuple[str, ...]
    style_dropout: float = setting(0.1, low=0.0, high=1.0)  # 0: it never learnt "any"

    def check(self) -> None:
        super().check()
        if not self.styles:
            raise FieldError("styles", "should list at least 'any'")


@dataclass(frozen=True, kw_only=True)
class TransformerSampling(Sampling):
    # Classifier-free guidance on the style (cadenza.plugins.transformer): 1 or absent (a
    # bundle made before the field was written) is none; only a model that learnt "any"
    # (style_dropout > 0) is guided.
    style_guidance: float | None = setting(None, low=0.0, high=MAX_STYLE_GUIDANCE)


@dataclass(frozen=True, kw_only=True)
class TransformerManifest(PluginManifest):
    sampling: TransformerSampling = field(default_factory=TransformerSampling)
    representation: PerformanceRepresentation = field(default_factory=PerformanceRepresentation)
    model: TransformerModel
    context: int = setting(DEFAULT_CONTEXT, low=2, high=MAX_CONTEXT)  # style slot + events

    def codec(self) -> PerformanceCodec:
        """The events the plugin reads and writes."""
        return self.representation.codec()

    def check(self) -> None:
        check_cache(self.model, self.context)


# --- backing ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PartsRepresentation(Section):
    """cadenza.parts's token layout. Without `order` it is a bundle made before the player
    came first (backing-first)."""

    kind: str = setting(choices=("parts",))
    parts: int = size(3, high=16)
    steps_per_quarter: int = size(4, high=96)
    positions: int = size(32, high=1024)
    order: str = setting(BACKING_FIRST, choices=ORDERS)
    names: tuple[str, ...] | None = None  # None: cadenza.parts.default_names

    @classmethod
    def of(cls, codec: PartsCodec) -> Self:
        return cls(kind=codec.kind, parts=codec.parts, steps_per_quarter=codec.steps_per_quarter,
                   positions=codec.positions, order=codec.order, names=codec.names)

    def check(self) -> None:
        if self.names is not None and len(self.names) != self.parts:
            raise FieldError("names", f"should name the {self.parts} parts, got {list(self.names)}")

    def codec(self) -> PartsCodec:
        return PartsCodec(parts=self.parts, steps_per_quarter=self.steps_per_quarter,
                          positions=self.positions, order=self.order,
                          names=self.names or default_names(self.parts))


@dataclass(frozen=True, kw_only=True)
class BackingParts(Section):
    """Per part, as trained: its register, its General MIDI program, the notes it sounds at
    once; and the interval table the harmony knob leans on. Each may be absent (a bundle made
    before it): every pitch, each name's default program, 4 voices, no harmony knob."""

    ranges: tuple[tuple[int, int], ...] | None = setting(None, **PITCH)
    programs: tuple[int, ...] | None = setting(None, low=0, high=127)
    harmony: tuple[float, ...] | None = setting(None, low=-20.0, high=20.0)  # log-odds
    voices: tuple[int, ...] | None = setting(None, low=1, high=16)

    def check(self) -> None:
        if self.harmony is not None and len(self.harmony) != 12:
            raise FieldError("harmony", f"should list 12 numbers (one per interval), got "
                                        f"{len(self.harmony)}")
        if self.ranges is not None and any(low > high for low, high in self.ranges):
            raise FieldError("ranges", f"should be [low, high] pairs, got {self.ranges}")


@dataclass(frozen=True, kw_only=True)
class BackingManifest(PluginManifest):
    sampling: TransformerSampling = field(default_factory=TransformerSampling)
    representation: PartsRepresentation
    model: TransformerModel
    context: int = setting(DEFAULT_CONTEXT, low=2, high=MAX_CONTEXT)
    backing: BackingParts = field(default_factory=BackingParts)

    def codec(self) -> PerformanceCodec:
        """The events of the backing's notes (the live engine and `cadenza generate` write
        them as performance events)."""
        return PerformanceCodec()

    def check(self) -> None:
        check_cache(self.model, self.context)
        parts, codec = self.representation.parts, self.representation.codec()
        if self.model.vocab_size != codec.vocab_size:
            raise FieldError("model.vocab_size", f"is {self.model.vocab_size}, its "
                                                 f"representation has {codec.vocab_size}")
        for name in ("ranges", "programs", "voices"):
            values = getattr(self.backing, name)
            if values is not None and len(values) != parts:
                raise FieldError(f"backing.{name}", f"should list one per part ({parts}), "
                                                    f"got {len(values)}")


# --- vae ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PianorollRepresentation(Section):
    """cadenza.pianoroll's segment grid, and the tempo phrases are written at by default."""

    kind: str = setting(choices=("pianoroll",))
    steps_per_quarter: int = size(high=96)
    beats_per_bar: int = size(high=64)
    beat_unit: int = setting(choices=(1, 2, 4, 8, 16, 32, 64))
    bars: int = size(high=64)
    min_pitch: int = setting(**PITCH)
    max_pitch: int = setting(**PITCH)
    channels: tuple[str, ...] = ("onset", "hold", "velocity")
    default_bpm: float = setting(120.0, above=0.0, high=1000.0)

    @classmethod
    def of(cls, grid: Grid, default_bpm: float) -> Self:
        return cls(kind="pianoroll", steps_per_quarter=grid.steps_per_quarter,
                   beats_per_bar=grid.beats_per_bar, beat_unit=grid.beat_unit, bars=grid.bars,
                   min_pitch=grid.min_pitch, max_pitch=grid.max_pitch, default_bpm=default_bpm)

    def check(self) -> None:
        if self.min_pitch > self.max_pitch:
            raise FieldError("max_pitch", f"({self.max_pitch}) is below min_pitch "
                                          f"({self.min_pitch})")
        try:
            grid = self.grid()
        except ValueError as error:
            raise FieldError("beats_per_bar", str(error)) from None
        if grid.segment_steps > MAX_SEGMENT_STEPS:
            raise FieldError("bars", f"({self.bars}) makes segments of {grid.segment_steps} "
                                     f"steps (at most {MAX_SEGMENT_STEPS})")

    def grid(self) -> Grid:
        return Grid(steps_per_quarter=self.steps_per_quarter, beats_per_bar=self.beats_per_bar,
                    beat_unit=self.beat_unit, bars=self.bars, min_pitch=self.min_pitch,
                    max_pitch=self.max_pitch)


@dataclass(frozen=True, kw_only=True)
class VAEModel(Section):
    latent: int = size(high=65_536)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VAEManifest(PluginManifest):
    representation: PianorollRepresentation
    style_codes: dict[str, tuple[float, ...]] = field(default_factory=dict)  # a mean code each
    model: VAEModel | None = None

    def check(self) -> None:
        if self.model is None:
            return
        for name, code in self.style_codes.items():
            if len(code) != self.model.latent:
                raise FieldError(f"style_codes.{name}", f"is not a code of {self.model.latent}")


# --- melody-rnn ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MelodyRepresentation(Section):
    """cadenza.melody's encoding: the pitch range of its classes and its grid."""

    kind: str = setting(choices=("melody",))
    min_pitch: int = setting(48, **PITCH)
    max_pitch: int = setting(84, **PITCH)  # exclusive, as Magenta's max_note
    steps_per_quarter: int = size(4, high=96)
    steps_per_bar: int = size(16, high=1024)
    default_bpm: float = setting(120.0, above=0.0, high=1000.0)

    def check(self) -> None:
        if self.max_pitch - self.min_pitch < 12:
            raise FieldError("max_pitch", f"({self.max_pitch}) should be an octave or more "
                                          f"above min_pitch ({self.min_pitch})")

    def encoding(self) -> MelodyEncoding:
        return MelodyEncoding(self.min_pitch, self.max_pitch, self.steps_per_quarter,
                              self.steps_per_bar)


@dataclass(frozen=True, kw_only=True)
class MelodyRNNModel(Section):
    """The variant, its LSTM (the state's shape is also in io.step.inputs.h) and, for
    attention, the window of outputs it attends over."""

    variant: str = setting(choices=VARIANTS)
    hidden_size: int = size(high=65_536)
    num_layers: int = size(high=256)
    attention_length: int = size(40, high=4096)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class MelodyRNNManifest(PluginManifest):
    representation: MelodyRepresentation
    model: MelodyRNNModel

    def check(self) -> None:
        """The inputs the plugin computes must be the ones the graph was exported for."""
        encoding, variant = self.representation.encoding(), self.model.variant
        for name, wanted in (("input_size", encoding.input_size(variant)),
                             ("output_size", encoding.output_size(variant))):
            if self.model.extra.get(name, wanted) != wanted:
                raise FieldError(f"model.{name}", f"is {self.model.extra[name]}, a {variant} "
                                                  f"model of this representation has {wanted}")


# --- codec-lm -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CodecLMSampling(Sampling):
    cfg: float = setting(3.0, low=0.0, high=100.0)  # classifier-free guidance; 1: none


@dataclass(frozen=True, kw_only=True)
class CodecRepresentation(Section):
    """The codec's tokens: K codebooks a frame, `hop` samples a frame, laid out by a pattern;
    the causal decoder needs `decoder_context_frames` frames before a chunk."""

    kind: str = setting(choices=("codec-audio",))
    sample_rate: int = size(high=384_000)
    hop: int = size(high=1 << 16)
    frame_rate: float | None = setting(None, above=0.0, high=384_000.0)
    num_codebooks: int = size(high=64)
    codebook_size: int = size()
    pattern: str = setting("delay", choices=PATTERN_NAMES)
    decoder_context_frames: int = setting(low=0, high=1 << 16)

    def check(self) -> None:
        if self.decoder_context_frames * self.hop > MAX_DECODER_SAMPLES:
            raise FieldError("decoder_context_frames",
                             f"({self.decoder_context_frames}) of {self.hop} samples each is "
                             f"over {MAX_DECODER_SAMPLES} samples")


@dataclass(frozen=True, kw_only=True)
class CodecLMModel(AttentionModel):
    text_dim: int = size(high=65_536)  # the text embedding's size


@dataclass(frozen=True, kw_only=True)
class TextEncoderInfo(Section):
    """Which sentence encoder the LM was conditioned with (found at run time, not shipped)."""

    model: str
    embedding_dim: int = size(high=65_536)
    files: str | None = None


@dataclass(frozen=True, kw_only=True)
class CodecLMManifest(PluginManifest):
    sampling: CodecLMSampling = field(default_factory=CodecLMSampling)
    representation: CodecRepresentation
    model: CodecLMModel
    context: int | None = setting(None, low=2, high=MAX_CONTEXT)  # None: the caller says
    text_encoder: TextEncoderInfo | None = None

    def check(self) -> None:
        check_cache(self.model, self.context)
        if self.text_encoder is not None and self.text_encoder.embedding_dim != self.model.text_dim:
            raise FieldError("text_encoder.embedding_dim",
                             f"is {self.text_encoder.embedding_dim}, the model's text_dim "
                             f"{self.model.text_dim}")


__all__ = [
    "BackingManifest", "BackingParts", "CodecLMManifest", "CodecLMModel",
    "CodecLMSampling", "CodecRepresentation", "MelodyRNNManifest", "MelodyRNNModel",
    "MelodyRepresentation", "PartsRepresentation", "PerformanceRNNManifest",
    "PianorollRepresentation", "RNNModel", "TextEncoderInfo", "TransformerManifest",
    "TransformerModel", "TransformerSampling", "VAEManifest", "VAEModel",
]
