"""Several images through one layer: each filter's response per image, and
which filters the images share and which only one of them drives.

Letters: N images, C channels (filters) of the layer, H x W its maps.

The response of channel c to image n is the spatial mean of its map,

    r[n, c] = (1 / (H*W)) sum_{i,j} A[n, c, i, j]      (A: the layer's output)

and for a fully connected layer (N, C) the value A[n, c] itself. The mean,
not the maximum, because it grows with both how strongly and how widely a
filter fires (one hot pixel does not make a filter "respond to the image"),
and it is what global average pooling, Grad-CAM's weights and
``bridge.actmax.objective`` measure, so the numbers mean the same here.
"""
from dataclasses import dataclass

import torch

from .networks import forward_to


@torch.no_grad()
def _output(module, x, layer, caller):
    if x.dim() != 4:
        raise ValueError(f"{caller}: x must be a batch (N, C, H, W), got shape {tuple(x.shape)}")
    try:
        out = forward_to(module, x, layer)   # the layers after it: not run
    except ValueError as err:                # an unknown layer: say who asked
        raise ValueError(f"{caller}: {err}") from None
    if out.dim() not in (2, 4):
        raise ValueError(f"{caller}: layer {layer!r} has output shape {tuple(out.shape)}; "
                         f"only (N, C, H, W) maps or (N, C) vectors have one response per channel")
    return out.detach()


def layer_output(module, x, layer):
    """The output of ``layer`` (a name or alias) for the batch x (N, C_in, H_in, W_in):
    (N, C, H, W) for conv-stage layers, (N, C) for fully connected ones."""
    return _output(module, x, layer, "layer_output")


def spatial_mean(output):
    """r[n, c] = mean_{i,j} A[n, c, i, j] for (N, C, H, W); a (N, C) output is returned as is."""
    return output.mean(dim=(2, 3)) if output.dim() == 4 else output


def filter_responses(module, x, layer):
    """(N, C): each channel's response to each image, the spatial mean of the
    layer's map (the value itself for a (N, C) layer). See the module docstring."""
    return spatial_mean(_output(module, x, layer, "filter_responses"))


@dataclass(frozen=True)
class FilterGroups:
    """Which channels the images share. Index tensors are channel numbers of the layer.

    responses: (N, C) the responses the groups were computed from
    active:    (N, C) bool, channel c is active for image n
    shared:    channels active for every image, by their weakest response, strongest first
    unique:    N tensors, unique[n] = channels active for image n only, strongest first
    partial:   channels active for more than one image but not all (only when N >= 3),
               most images first
    silent:    channels active for no image (their strongest response is under the floor),
               strongest first
    """
    responses: torch.Tensor
    active: torch.Tensor
    shared: torch.Tensor
    unique: list
    partial: torch.Tensor
    silent: torch.Tensor
    fraction: float
    floor: float

    @property
    def order(self):
        """(C,) every channel once: shared, then unique to image 0, 1, ..., then partial, then silent."""
        return torch.cat([self.shared, *self.unique, self.partial, self.silent])


def _by(values, channels, descending=True):
    """``channels`` sorted by ``values[channels]`` (stable, so ties keep channel order)."""
    return channels[torch.sort(values[channels], descending=descending, stable=True).indices]


def shared_and_unique(responses, fraction=0.5, floor=0.05):
    """Group the channels of a layer by the images that make them fire.

    responses: (N, C), N >= 2, from ``filter_responses``. With
    peak[c] = max_n r[n, c] (the channel's strongest response over these
    images) and top = max_{n,c} r[n, c] (the layer's):

        active[n, c] = r[n, c] >= fraction * peak[c]  and  peak[c] >= floor * top  and  peak[c] > 0

    Why relative to the channel: the filters of a trained network respond on
    scales that differ by orders of magnitude, so one absolute threshold would
    call the loud filters shared and the quiet ones silent whatever the images
    show. Against its own peak a channel is shared when every image drives it
    to at least ``fraction`` of its best, and unique to image n when n drives
    it and the others reach less than ``fraction`` of that. The floor, relative
    to the whole layer, keeps near-dead channels (a ReLU that is almost always
    zero, numerical noise) silent instead of unique to whichever image gives
    the largest tiny value. Every channel above the floor is active for at
    least the image of its peak, so ``silent`` is exactly the channels under it.
    A response <= 0 (a conv layer before its ReLU) is never active: peak > 0 and fraction > 0.
    """
    responses = torch.as_tensor(responses)
    if responses.dim() != 2 or responses.shape[0] < 2:
        raise ValueError(f"shared_and_unique: responses must be (N, C) with N >= 2 images, "
                         f"got shape {tuple(responses.shape)}")
    if not torch.isfinite(responses).all():
        raise ValueError("shared_and_unique: responses contain NaN or infinity")
    if not 0 < fraction <= 1:
        raise ValueError(f"shared_and_unique: fraction must be in (0, 1], got {fraction}")
    if not 0 <= floor < 1:
        raise ValueError(f"shared_and_unique: floor must be in [0, 1), got {floor}")
    N, C = responses.shape
    peak = responses.max(dim=0).values                                      # (C,)
    top = responses.max()
    loud = (peak > 0) & (peak >= floor * top)                               # (C,)
    active = (responses >= fraction * peak) & loud                          # (N, C)
    count = active.sum(dim=0)                                               # (C,) images per channel
    channels = torch.arange(C, device=responses.device)
    shared = _by(responses.min(dim=0).values, channels[count == N])
    unique = [_by(responses[n], channels[(count == 1) & active[n]]) for n in range(N)]
    partial = _by(count.to(responses.dtype), channels[(count > 1) & (count < N)])
    silent = _by(peak, channels[count == 0])
    return FilterGroups(responses, active, shared, unique, partial, silent, fraction, floor)
