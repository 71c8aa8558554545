"""``npcnn explain`` over many images: predictions and attributions in
batches, with memory bounded whatever the number of images.

Each batch of ``--batch-size`` images is read from disk, moved to the
device, predicted and attributed, and its figures are written before the
next batch is read; Integrated Gradients, SmoothGrad and occlusion go
through their rows ``--internal-batch-size`` at a time. What stays in
memory across batches is one thumbnail and one map per image, for the
summary page.

Outputs for one image: ``attributions.png`` (the image and a map per
method). For several: ``attributions/NNNN_<name>.png``, one per image;
``summary.png`` (``summary_2.png``, ... past 64 images): every image with
its prediction, class name and the first method's map; ``predictions.csv``
(path, top-5 classes and probabilities).
"""
import contextlib
import csv
import io
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as TF

from bridge.attribution import (gradcam, gradcam_plus_plus, gradient_x_input, guided_gradcam, integrated_gradients,
                                occlusion, reduce_channels, saliency, smoothgrad)
from bridge.class_names import class_names
from bridge.guided import guided_backprop
from bridge.images import to_display
from npcnn.atomic import atomic_write_text

from . import explain_figures as figures
from .progress import progress_bar

ATTRIBUTIONS = ("saliency", "gradient-x-input", "guided-backprop", "smoothgrad", "integrated-gradients",
                "gradcam", "gradcam++", "guided-gradcam", "occlusion")
SIGNED = ("gradient-x-input", "integrated-gradients")   # colour: summed over channels (completeness holds)
PAGE = 64             # images per summary page
THUMBNAIL = 64        # pixels: the summary keeps images and maps no larger
PRINTED = 20          # more images than this: top-5 lines go to predictions.csv only


@dataclass
class Settings:
    """What the attributions need beside the images (from the command's options)."""
    layer: str
    baseline: torch.Tensor        # (1, C, 1, 1): black, in the network's units
    mean: tuple
    std: tuple
    colour_rule: str = "max-abs"
    batch_size: int = 32
    internal_batch_size: int = 64
    ig_steps: int = 50
    samples: int = 25
    seed: int = 0


@dataclass
class Summary:
    thumbnails: list = field(default_factory=list)
    maps: list = field(default_factory=list)
    captions: list = field(default_factory=list)


def attribute(module, x, target, methods, s):
    """{figure label: (N, H, W) numpy map} of each method for the batch x."""
    rows = s.internal_batch_size
    compute = {
        "saliency": lambda: saliency(module, x, target),
        "gradient-x-input": lambda: gradient_x_input(module, x, target),
        "guided-backprop": lambda: guided_backprop(module, x, target),
        "smoothgrad": lambda: smoothgrad(module, x, target, samples=s.samples, seed=s.seed,
                                         internal_batch_size=rows),
        "integrated-gradients": lambda: integrated_gradients(module, x, target, s.baseline, steps=s.ig_steps,
                                                             internal_batch_size=rows),
        "gradcam": lambda: gradcam(module, x, target, s.layer),
        "gradcam++": lambda: gradcam_plus_plus(module, x, target, s.layer),
        "guided-gradcam": lambda: guided_gradcam(module, x, target, s.layer),
        "occlusion": lambda: occlusion(module, x, target, size=max(4, x.shape[-1] // 7),
                                       stride=max(2, x.shape[-1] // 28), fill=s.baseline.view(-1),
                                       internal_batch_size=rows),
    }
    maps = {}
    for m in methods:
        v = compute[m]().detach()
        if v.dim() == 4:   # input-shaped: one value per pixel
            v = reduce_channels(v, "sum" if m in SIGNED or v.shape[1] == 1 else s.colour_rule)
        maps[method_label(m, s.layer)] = v.cpu().numpy()
    return maps


def _thumbnail(a):
    """An (H, W[, 3]) array shrunk (area average) to at most THUMBNAIL pixels a side."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    t = t.permute(2, 0, 1)[None] if t.dim() == 3 else t[None, None]
    if max(t.shape[-2:]) > THUMBNAIL:
        t = TF.adaptive_avg_pool2d(t, (min(THUMBNAIL, t.shape[-2]), min(THUMBNAIL, t.shape[-1])))
    t = t[0]
    return (t.permute(1, 2, 0) if t.shape[0] == 3 else t[0]).numpy()


def _out_of_memory(err, s, device):
    return ValueError(f"a batch of {s.batch_size} images ({s.internal_batch_size} rows inside Integrated "
                      f"Gradients, SmoothGrad and occlusion) does not fit in the memory of {device}; try "
                      f"--batch-size {max(1, s.batch_size // 2)} --internal-batch-size "
                      f"{max(1, s.internal_batch_size // 2)}")


def explain_images(module, paths, load, methods, target, s, out, arch):
    """Predict, and attribute with ``methods``, every image of ``paths`` in
    batches; print the top-5 lines, write the figures. ``load(path)`` gives
    a (1, C, H, W) tensor; ``target`` is None (the predicted class) or one
    class for every image. Returns the paths written."""
    device = next(module.parameters()).device
    names = class_names(arch)
    several = len(paths) > 1
    written, summary, table = [], Summary(), []
    if methods and several:
        (out / "attributions").mkdir(exist_ok=True)
    bar = (progress_bar(len(paths), "explain", unit="image") if several
           else contextlib.nullcontext(lambda done: None))   # one image: nothing to show
    with bar as progress:
        for start in range(0, len(paths), s.batch_size):
            batch = paths[start:start + s.batch_size]
            x = torch.cat([load(p) for p in batch]).to(device=device, dtype=next(module.parameters()).dtype)
            try:
                with torch.no_grad():
                    probs = torch.softmax(module(x), dim=1)
                chosen = torch.full((len(x),), target, device=device) if target is not None else probs.argmax(1)
                maps = attribute(module, x, chosen, methods, s) if methods else {}
            except torch.cuda.OutOfMemoryError as err:
                raise _out_of_memory(err, s, device) from None
            probs = probs.cpu()
            for k, (path, p) in enumerate(zip(batch, probs)):
                top = torch.topk(p, min(5, len(p)))
                table.append([str(path)] + [f"{names[int(i)]}:{float(v):.6f}" for v, i in zip(*top)])
                line = ", ".join(f"{names[int(i)]} ({float(v):.1%})" for v, i in zip(*top))
                if len(paths) <= PRINTED:
                    print(("top 5: " if not several else f"{path}: top 5: ") + line)
                if not methods:
                    continue
                image = to_display(x[k], s.mean, s.std)
                label = names[int(chosen[k])]
                if several:
                    one = {m: v[k:k + 1] for m, v in maps.items()}
                    name = f"{start + k:04d}_{path.stem}.png"
                    written.append(figures.attributions([image], [label], one, out / "attributions" / name,
                                                        f"{arch}: {path.name}, attributions for {label}",
                                                        kind="class"))
                    first = next(iter(maps.values()))[k]
                    summary.thumbnails.append(_thumbnail(image))
                    summary.maps.append(_thumbnail(first))
                    summary.captions.append(f"{path.name}\n{names[int(probs[k].argmax())]} "
                                            f"({float(probs[k].max()):.1%})")
                else:
                    written.append(figures.attributions([image], [label], maps, out / "attributions.png",
                                                        f"{arch}: attributions for the class {label}",
                                                        kind="class"))
            progress(start + len(batch))
    if several:
        written.append(_write_predictions(table, out / "predictions.csv"))
        if len(paths) > PRINTED:
            print(f"top 5 of {len(paths)} images: {out / 'predictions.csv'}")
    if methods and several:
        first = method_label(methods[0], s.layer).replace("\n", " ")
        for page, begin in enumerate(range(0, len(summary.captions), PAGE), start=1):
            end = begin + PAGE
            written.append(figures.summary(summary.thumbnails[begin:end], summary.maps[begin:end],
                                           summary.captions[begin:end],
                                           out / ("summary.png" if page == 1 else f"summary_{page}.png"),
                                           f"{arch}: {len(paths)} images, prediction and {first}"
                                           + (f", page {page}" if len(summary.captions) > PAGE else "")))
    return written


def method_label(method, layer):
    """The figures' name of a method: the CAM methods say which layer they read."""
    return f"{method}\n({layer})" if method in ("gradcam", "gradcam++", "guided-gradcam") else method


def _write_predictions(rows, path):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["image"] + [f"top{k}" for k in range(1, 6)])
    writer.writerows(rows)
    return atomic_write_text(path, text.getvalue())
