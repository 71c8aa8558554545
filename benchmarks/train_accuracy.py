"""Measure the training targets: LeNet-5 >= 99.0 % and SimpleCNN >= 98.8 %
test accuracy on full MNIST, each in under 5 minutes on this machine.

    python benchmarks/train_accuracy.py [--data-dir DIR] [--epochs 8] [--out results.json]

Prints a Markdown table and writes JSON. Not a test: CI only trains briefly.
"""
import argparse
import json
import os
import platform

import torch

from bridge.train import train
from npcnn.atomic import atomic_path
from npcnn.data import load_mnist

TARGETS = {"lenet5": 0.990, "simplecnn": 0.988}
TIME_LIMIT_S = 300


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--out", default="train_accuracy.json")
    args = p.parse_args(argv)
    train_set = load_mnist("mnist", "train", data_dir=args.data_dir)
    test_set = load_mnist("mnist", "test", data_dir=args.data_dir)
    rows = []
    for arch, target in TARGETS.items():
        r = train(arch, train_set, test_set, epochs=args.epochs, seed=args.seed, device=args.device)
        met = r.test_accuracy >= target and r.seconds <= TIME_LIMIT_S
        rows.append(dict(arch=arch, dataset=train_set.name, epochs=args.epochs, seed=args.seed,
                         test_accuracy=r.test_accuracy, target=target, seconds=round(r.seconds, 1),
                         met=met, history=r.history))
    machine = dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(),
                   device=str(args.device or ("cuda" if torch.cuda.is_available() else "cpu")),
                   platform=platform.platform(), torch=str(torch.__version__))
    print(f"\n{machine}\n")
    print("| network | dataset | epochs | test accuracy | target | time (s) | met |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['arch']} | {r['dataset']} | {r['epochs']} | {100 * r['test_accuracy']:.2f} % | "
              f"{100 * r['target']:.1f} % | {r['seconds']} | {'yes' if r['met'] else 'NO'} |")
    with atomic_path(args.out) as tmp, open(tmp, "w") as f:
        json.dump(dict(machine=machine, results=rows), f, indent=1)
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
