"""The paper's networks: AESc (autoencoder with additive skip connections) and AE (book chapter 3, "Networks").

Section III.A and Fig. 2 of the paper: 6 convolutions (5x5, stride 2) take a 256 px image to a 4x4x512 latent; "6
layers of convolution followed by an upsampling operator of factor 2" bring it back: five blocks of x2
nearest-neighbour upsampling and a 5x5 convolution (512 -> 256 ... 32 -> 16, at 8 to 128 px), then a sixth x2
upsampling and the 5x5 output convolution (16 -> C) with a sigmoid.  AESc *adds* the encoder's feature map of the
same resolution at every scale from 8 px to 128 px.  AE is the same network without the skips.

Decoder readings (``decoder=``): ``"paper"`` (the default) is the network above, six convolutions in the
decoder as the text says; it is also what the authors' code builds (5 upsample + convolution blocks, then a 16 -> 1
output convolution), so there is no separate ``"code"`` decoder.  ``"legacy"`` is stainlib's first reading, which
had a sixth block (16 -> 8 channels, at full resolution) before a 5x5 head 8 -> C: seven decoder convolutions.  Runs
made before the readings were named (whose ``config.json`` has no ``decoder`` key, such as the runs in
``results/bottle/legacy-decoder``) are loaded as ``"legacy"``.  Parameter counts, grayscale, 6 levels, width 16:

====================  ============  ============
decoder               AESc / AE     decoder convolutions
====================  ============  ============
``paper`` (= code)    8,734,913     6
``legacy``            8,737,937     7
====================  ============  ============

Monte-Carlo dropout (section III.C, chapter 5): each depth level carries a dropout layer on the encoder's feature map
(which feeds both the next level and the skip), with rates [0, 0, 0.1, 0.2, 0.3, 0.4] from the highest resolution to
the lowest (``dropout="paper"``).  ``dropout="code"``, the authors' code, uses [0, 0, 0.1, 0.2, 0.4, 0.5] and puts
dropout in the decoder too: after each decoder block, at the rate of the encoder level of the same resolution.  Both
readings apply dropout only when sampling (never in training), so the reading is an evaluation setting, switched on a
trained model by :meth:`AutoEncoder.set_dropout`; it is not part of a run's identity.  (The code also stores the
variance in 8 bits; that is not followed, see :func:`stainlib.detect.uncertainty_map`.)  Dropout is off in training
and evaluation by default, and is switched on for sampling by
:meth:`AutoEncoder.mc_dropout` (or :meth:`AutoEncoder.mc_sampling`) without touching batch norm, which stays in eval
mode.  The levels before the first non-zero rate are the same in every sample: :meth:`AutoEncoder.encode_shared`
computes them once per image and :meth:`AutoEncoder.sample_from` runs the rest for as many samples as wanted, reusing
them (and their skips), which is how :func:`stainlib.detect.uncertainty_map` samples.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["AE", "AESc", "DECODERS", "DROPOUTS", "MODELS", "AutoEncoder", "MCDropout", "build_model", "dropout_rates"]

PAPER_DROPOUT = (0.0, 0.0, 0.1, 0.2, 0.3, 0.4)
CODE_DROPOUT = (0.0, 0.0, 0.1, 0.2, 0.4, 0.5)
DECODERS = ("paper", "legacy")
DROPOUTS = ("paper", "code")
"""Named dropout readings: ``paper`` (encoder only, rates [0, 0, .1, .2, .3, .4]) and ``code`` (encoder and decoder,
[0, 0, .1, .2, .4, .5])."""


def dropout_rates(reading: str, depth: int = 6) -> tuple[list[float], list[float]]:
    """The encoder's and the decoder's dropout rates (one per level, highest resolution first) of a named reading.

    The decoder's rate at a level applies after the decoder block whose output has that level's resolution.  Only
    ``depth`` 6, the paper's, has named rates.

    Example: ``encoder, decoder = dropout_rates("paper")``, one rate per level of each.
    """
    if reading not in DROPOUTS:
        raise ValueError(f"dropout reading must be one of {', '.join(DROPOUTS)}, got {reading!r}")
    if depth != 6:
        raise ValueError(f"named dropout readings are defined for depth 6, got {depth}; pass the rates instead")
    if reading == "paper":
        return list(PAPER_DROPOUT), [0.0] * depth
    return list(CODE_DROPOUT), list(CODE_DROPOUT)


class MCDropout(nn.Module):
    """Dropout that is applied only when switched on (``active``), or in training when ``train`` is set.

    Unlike :class:`torch.nn.Dropout`, it does not follow ``model.eval()``, so Monte-Carlo sampling can run with batch
    norm in eval mode.  On the CPU its masks do not depend on the memory layout (channels_last or not).
    """

    def __init__(self, p: float, train: bool = False):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must lie in [0, 1), got {p}")
        self.p, self.train_dropout, self.active = float(p), bool(train), False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with dropout while MC sampling is on (or in training with ``train_dropout``), else ``x`` itself.

        Args:
            x: any tensor; the mask is drawn in the logical order, so a channels_last ``x`` gets the same mask (and
                values) as the same ``x`` contiguous.

        Returns:
            A tensor shaped as ``x``, kept values scaled by ``1 / (1 - p)``.
        """
        if self.p > 0 and (self.active or (self.training and self.train_dropout)):
            if x.device.type == "cpu" and not x.is_contiguous():
                # F.dropout draws its mask in memory order, so a channels_last x would get other masks than the
                # same x contiguous; drawn in the logical order, as F.dropout does for a contiguous x, the masks
                # (and the values) are the same whatever the layout.
                return x * torch.empty(x.shape, dtype=x.dtype).bernoulli_(1 - self.p).div_(1 - self.p)
            return F.dropout(x, self.p, training=True)
        return x

    def extra_repr(self) -> str:
        return f"p={self.p}, train={self.train_dropout}"


def _block(c_in: int, c_out: int, kernel: int, stride: int, slope: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(slope, inplace=True),
    )


class AutoEncoder(nn.Module):
    """Convolutional autoencoder of the paper, with (``skips=True``, AESc) or without (AE) additive skips.

    Args:
        in_channels: 1 (grayscale, the paper) or 3 (RGB).
        depth: number of stride-2 levels (6: a 256 px input gives a 4x4 latent).
        base_width: channels of the first level; each level doubles it (16 ... 512).
        kernel_size: of every convolution (5).
        skips: add encoder features to the decoder at every scale but the full resolution.
        decoder: ``"paper"`` (six convolutions, the default) or ``"legacy"`` (an extra full-resolution block).
        dropout: one rate per level, from the highest resolution to the lowest, or a reading's name (``"paper"``, the
            default, or ``"code"``, which also sets ``decoder_dropout``).
        decoder_dropout: one rate per level for dropout after the decoder blocks (none by default).
        train_dropout: also apply dropout while training (off in the paper).
        negative_slope: of the LeakyReLU activations (the paper does not give it; 0.2 is the usual choice).

    The input side must be divisible by ``2 ** depth``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 6,
        base_width: int = 16,
        kernel_size: int = 5,
        skips: bool = True,
        dropout="paper",
        train_dropout: bool = False,
        negative_slope: float = 0.2,
        decoder: str = "paper",
        decoder_dropout=None,
    ):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if isinstance(dropout, str):
            dropout, named_decoder_dropout = dropout_rates(dropout, depth)
            decoder_dropout = named_decoder_dropout if decoder_dropout is None else decoder_dropout
        decoder_dropout = [0.0] * depth if decoder_dropout is None else list(decoder_dropout)
        for what, rates in (("dropout", dropout), ("decoder_dropout", decoder_dropout)):
            if len(rates) != depth:
                raise ValueError(f"{what} needs one rate per level ({depth}), got {len(rates)}")
        self.config = {
            "in_channels": in_channels,
            "depth": depth,
            "base_width": base_width,
            "kernel_size": kernel_size,
            "skips": skips,
            "dropout": list(dropout),
            "train_dropout": train_dropout,
            "negative_slope": negative_slope,
            "decoder": decoder,
            "decoder_dropout": decoder_dropout,
        }
        self.depth, self.skips = depth, skips
        widths = [base_width * 2**i for i in range(depth)]
        k, s = kernel_size, negative_slope
        self.encoder = nn.ModuleList(
            _block(c_in, c_out, k, 2, s) for c_in, c_out in zip([in_channels, *widths[:-1]], widths)
        )
        self.drop = nn.ModuleList(MCDropout(p, train_dropout) for p in dropout)
        # The decoder's blocks, deepest first: block j upsamples to H / 2**(depth-1-j).  The paper's has depth - 1
        # blocks (to H / 2) and the head upsamples to H; the legacy one has a last block at H, 16 -> 8 channels.
        dec_in = widths[::-1]
        dec_out = [*widths[::-1][1:], base_width // 2]
        if decoder == "paper":
            dec_in, dec_out = dec_in[:-1], dec_out[:-1]
        self.decoder = nn.ModuleList(_block(c_in, c_out, k, 1, s) for c_in, c_out in zip(dec_in, dec_out))
        # dec_drop[j] follows decoder block j, at the rate of the level of the same resolution (depth - 2 - j).
        self.dec_drop = nn.ModuleList(
            MCDropout(decoder_dropout[self.depth - 2 - j] if self.depth - 2 - j >= 0 else 0.0, train_dropout)
            for j in range(len(self.decoder))
        )
        self.head_upsample = decoder == "paper"
        self.head = nn.Conv2d(dec_out[-1], in_channels, k, padding=k // 2)

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse an input the network cannot reconstruct.

        Args:
            x: the batch to check.

        Raises:
            ValueError: ``x`` is not ``(B, in_channels, H, W)``, or ``H`` or ``W`` is not divisible by ``2 ** depth``.
        """
        if x.dim() != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"expected input (B, {self.config['in_channels']}, H, W), got {tuple(x.shape)}")
        step = 2**self.depth
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"input sides must be divisible by 2**depth = {step}, got {x.shape[-2]}x{x.shape[-1]}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``: ``(B, C, H, W)`` in [0, 1] in, the same shape out (sigmoid output).

        Example: ``build_model("aesc")(torch.rand(2, 1, 64, 64)).shape == (2, 1, 64, 64)``.
        """
        return self.sample_from(self.encode_shared(x), 1)

    def shared_levels(self) -> int:
        """How many leading levels have no dropout (rate 0): their features are the same in every MC sample.

        Example: ``build_model("aesc", dropout="paper").shared_levels() == 2`` (its first two levels have rate 0).
        """
        for i, m in enumerate(self.drop):
            if m.p > 0:
                return i
        return self.depth

    def encode_shared(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder's levels before the first dropout, computed once per image.

        Args:
            x: a ``(B, C, H, W)`` batch in [0, 1] (:meth:`check_input`).

        Returns:
            ``(last output, features)``: the last shared level's output and every shared level's output, for
            :meth:`sample_from`.
        """
        self.check_input(x)
        features = []
        for block in self.encoder[: self.shared_levels()]:  # their dropout rate is 0: no dropout to apply
            x = block(x)
            features.append(x)
        return x, features

    def sample_from(self, shared: tuple[torch.Tensor, list[torch.Tensor]], repeats: int = 1) -> torch.Tensor:
        """``repeats`` reconstructions of each image from :meth:`encode_shared`'s output, ``(B * repeats, C, H, W)``.

        Sample ``r`` of image ``b`` is row ``b * repeats + r``: the same layout, the same dropout draws (for the same
        random state) and the same values as ``model(x.repeat_interleave(repeats, 0))``, without computing the shared
        levels again for every copy.  Meant for evaluation (batch norm in eval mode), as in MC-dropout sampling.

        Args:
            shared: :meth:`encode_shared`'s output.
            repeats: reconstructions per image.

        Returns:
            The ``(B * repeats, C, H, W)`` reconstructions.
        """
        x, shared = shared
        n = len(shared)
        if repeats > 1:
            x = x.repeat_interleave(repeats, 0)
        features = list(shared)
        for block, drop in zip(self.encoder[n:], self.drop[n:]):
            x = drop(block(x))
            features.append(x)
        # features[i] has resolution H / 2**(i+1); the decoder's block j outputs H / 2**(depth-1-j).
        for j, (block, drop) in enumerate(zip(self.decoder, self.dec_drop)):
            x = block(F.interpolate(x, scale_factor=2, mode="nearest"))
            level = self.depth - 2 - j
            if self.skips and level >= 0:
                if level < n and repeats > 1:  # one shared feature map for all the copies of an image
                    x = (x.unflatten(0, (-1, repeats)) + features[level][:, None]).flatten(0, 1)
                else:
                    x = x + features[level]
            x = drop(x)
        if self.head_upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.sigmoid(self.head(x))

    def _dropouts(self) -> list[MCDropout]:
        return [*self.drop, *self.dec_drop]

    def set_dropout(self, reading) -> AutoEncoder:
        """Use the dropout rates of a named reading from now on.

        Rates hold no weights, so a trained model can be sampled under either reading.  ``config`` is updated.

        Args:
            reading: ``"paper"`` or ``"code"`` (:func:`dropout_rates`).

        Returns:
            The model itself: ``model.set_dropout("code").config["dropout"]``.
        """
        enc, dec = dropout_rates(reading, self.depth)
        for m, p in zip(self.drop, enc):
            m.p = float(p)
        for j, m in enumerate(self.dec_drop):
            level = self.depth - 2 - j
            m.p = float(dec[level]) if level >= 0 else 0.0
        self.config["dropout"], self.config["decoder_dropout"] = enc, dec
        return self

    def mc_dropout(self, active: bool = True) -> AutoEncoder:
        """Switch Monte-Carlo dropout on or off, leaving batch norm's mode alone.

        Args:
            active: on (``True``) or off.

        Returns:
            The model itself: ``model.eval().mc_dropout()`` samples with dropout and batch norm's running statistics.
        """
        for m in self._dropouts():
            m.active = bool(active)
        return self

    @contextlib.contextmanager
    def mc_sampling(self):
        """Context manager: dropout on inside, restored to its previous state on exit.

        Example: ``with model.mc_sampling(): samples = [model(x) for _ in range(30)]``.
        """
        modules = self._dropouts()
        before = [m.active for m in modules]
        self.mc_dropout(True)
        try:
            yield self
        finally:
            for m, state in zip(modules, before):
                m.active = state


class AESc(AutoEncoder):
    """The paper's autoencoder with additive skip connections (8,734,913 parameters in the default configuration;
    8,737,937 with ``decoder="legacy"``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("skips", True)
        super().__init__(**kwargs)


class AE(AutoEncoder):
    """The same network as :class:`AESc` without the skip connections."""

    def __init__(self, **kwargs):
        kwargs["skips"] = False
        super().__init__(**kwargs)


MODELS = {"aesc": AESc, "ae": AE}


def build_model(name: str, **kwargs) -> AutoEncoder:
    """Build ``aesc`` or ``ae`` with keyword arguments of :class:`AutoEncoder`.

    Example: ``build_model("aesc", dropout="paper")``, or ``build_model("ae")`` without the skips.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
