"""``npcnn train``: train LeNet-5 or SimpleCNN in torch and write a checkpoint."""
import os
from pathlib import Path

from bridge.train import TRAINABLE, train
from npcnn.data import load_mnist

EXAMPLE = "example: npcnn train --model lenet5 --epochs 8 --save-every 1 --out lenet5.pt"


def add_parser(sub):
    p = sub.add_parser("train", help="train LeNet-5 or SimpleCNN (torch; CUDA when present)",
                       description=__doc__, epilog=EXAMPLE)
    p.add_argument("--model", required=True, choices=TRAINABLE)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "mnist5k", "fashion-mnist"])
    p.add_argument("--data-dir", help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of Adam (cosine decay)")
    p.add_argument("--save-every", type=int, default=0, metavar="K",
                   help="also write a checkpoint after every K-th epoch (PATH.epochNN.pt)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--out", required=True, help="checkpoint to write (atomically)")
    p.set_defaults(run=run)


def check_writable(path):
    """Fail before hours of work, not after: the output folder must exist and be writable."""
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output folder {folder} is not writable")


def run(args):
    check_writable(args.out)
    train_set = load_mnist(args.dataset, "train", data_dir=args.data_dir)
    test_set = load_mnist(args.dataset, "test", data_dir=args.data_dir)
    print(f"data: {train_set.name}, {len(train_set)} training and {len(test_set)} test images, "
          f"from {train_set.source}")
    result = train(args.model, train_set, test_set, epochs=args.epochs, seed=args.seed,
                   device=args.device, batch_size=args.batch_size, lr=args.lr, out=args.out,
                   save_every=args.save_every)
    print(f"{args.model}: test accuracy {100 * result.test_accuracy:.2f}% on {len(test_set)} "
          f"{test_set.name} test images after {args.epochs} epochs, {result.seconds:.0f} s")
    for path in result.checkpoints:
        print(f"wrote {path}")
    return 0
