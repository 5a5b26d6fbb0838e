"""A frozen VGG that turns an image into named feature maps: ``{"conv4_2": tensor, ...}``.

The network is cut after the deepest layer asked for, never trained, and owns its input
normalisation: callers always pass sRGB in [0, 1]. Layer names and shapes are
:mod:`impasto.layers`'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from impasto.errors import UsageError
from impasto.layers import Pooling, canonical, convs, plan, recomputed_segments, segments
from impasto.weights import CAFFE_MEAN_BGR, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, get_source

Tap = Callable[[str, torch.Tensor], None]

# Where activations are kept channels-last (NHWC): oneDNN's native layout on CPUs, and what
# cuDNN's tensor cores want. On 2 AVX-512 cores the widest convolution (64 channels at 512 px)
# took 71 ms instead of 105 forward, 87 instead of 124 backward, and a forward and backward pass
# of VGG-19 with the style layers at 512 px 1.71 s instead of 1.86. The features a caller gets
# are then channels-last tensors, equal to NCHW ones up to float rounding.
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


class VGGFeatures(nn.Module):
    """VGG-19 / VGG-16 feature extractor, truncated after the deepest of ``layers``.

    ``forward(image)`` returns ``{name: activation}`` for exactly the names it was built with
    (an alias such as ``conv4_2`` keys the same tensor as ``relu4_2`` would).

    With ``recompute=True``, a forward pass that builds a graph keeps only the asked-for layers
    of the first blocks and runs the operations between them again during the backward pass
    (activation checkpointing): the same gradient, for a large image several GB less memory
    and 15% more arithmetic per step.

    Shape: image (B, 3, H, W) sRGB in [0, 1] -> each activation (B, C_l, H / 2^k, W / 2^k).
    """

    def __init__(
        self,
        network: str,
        layers: Sequence[str],
        *,
        weights: dict[str, torch.Tensor],
        pooling: Pooling = "max",
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UsageError(f"pooling must be 'max' or 'avg', not '{pooling}'")
        if not layers:
            raise UsageError("at least one layer is needed")
        source = get_source(network)
        self.network = network
        self.pooling = pooling
        self.input_convention = source.input_convention
        self.requested = {name: canonical(name, network) for name in layers}
        self.aliases: dict[str, list[str]] = {}  # canonical layer -> the names asked for it
        for name, canon in self.requested.items():
            self.aliases.setdefault(canon, []).append(name)
        self.plan = plan(layers, network)  # forward order, truncated after the deepest layer
        self.segments = segments(layers, network)
        self.recomputed = {tuple(seg) for seg in recomputed_segments(layers, network)}
        self.convs = nn.ModuleDict()
        for name, cin, cout in convs(network):
            if "relu" + name[4:] not in self.plan:
                break
            conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
            conv.weight.data.copy_(weights[f"{name}.weight"])
            conv.bias.data.copy_(weights[f"{name}.bias"])
            self.convs[name] = conv
        if source.input_convention == "caffe":
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
        else:
            mean, scale = torch.tensor(IMAGENET_MEAN_RGB), 1.0 / torch.tensor(IMAGENET_STD_RGB)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """sRGB [0, 1] -> what the weights were trained on (Caffe: BGR 0-255 minus the mean pixel)."""
        if self.input_convention == "caffe":
            image = image.flip(1)  # RGB -> BGR
        return (image - self.mean) * self.scale

    def _run(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        for name in ops:
            if name.startswith("relu"):
                # In place: a convolution's backward needs its input, never its output, so the
                # ReLU can reuse that buffer: one full-size write fewer per layer (at 512 px, a
                # forward and backward pass went from 1.53 to 1.47 s).
                x = F.relu(self.convs["conv" + name[4:]](x), inplace=True)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
        return x

    def forward(
        self,
        image: torch.Tensor,
        tap: Tap | None = None,
        *,
        dtype: torch.dtype | None = None,
        recompute: bool = False,
    ) -> dict[str, torch.Tensor]:
        """``tap(name, activation)``, if given, is called for each asked-for name as soon as its
        layer is computed. A loss computed there has its backward run right after the layers
        above it, not first: the gradients of the wide, shallow layers then do not wait in
        memory through the whole backward pass (at 1536 px: 2.9 GiB peak instead of 4.1).

        With ``dtype`` (bf16 or fp16) the convolutions run under autocast; ``tap`` still runs
        in float32, as sums over many pixels (Gram matrices) lose too much in 16 bits.
        """
        if dtype is None:
            return self._forward(image, tap, recompute)
        device_type = image.device.type
        full = None
        if tap is not None:

            def full(name: str, f: torch.Tensor) -> None:
                with torch.autocast(device_type, enabled=False):
                    tap(name, f)

        with torch.autocast(device_type, dtype=dtype):
            return self._forward(image, full, recompute)

    def _forward(
        self, image: torch.Tensor, tap: Tap | None, recompute: bool
    ) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        if x.device.type in CHANNELS_LAST_DEVICES:
            x = x.contiguous(memory_format=torch.channels_last)
        recompute = recompute and torch.is_grad_enabled() and x.requires_grad
        for seg in self.segments:
            if recompute and tuple(seg) in self.recomputed:
                x = checkpoint(self._run, x, seg, use_reentrant=False)
            else:
                x = self._run(x, seg)
            found[seg[-1]] = x
            if tap is not None:
                for name in self.aliases[seg[-1]]:
                    tap(name, x)
        return {name: found[canon] for name, canon in self.requested.items()}
