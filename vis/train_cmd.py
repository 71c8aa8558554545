"""``npcnn train``: train LeNet-5, SimpleCNN or the separable net in torch and write a checkpoint."""
from bridge.train import TRAINABLE, epoch_path, pick_device, saved_epochs, train
from npcnn.data import load_mnist

from .arguments import BadArgument, bounded, non_empty_str, non_negative_int, positive_int, seed_int
from .paths import input_dir, output_file

EXAMPLE = "example: npcnn train --model lenet5 --epochs 8 --save-every 1 --out lenet5.pt"


def add_parser(sub):
    p = sub.add_parser("train", help="train LeNet-5, SimpleCNN or the separable net (torch; CUDA when present)",
                       description=__doc__, epilog=EXAMPLE)
    p.add_argument("--model", required=True, choices=TRAINABLE)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "mnist5k", "fashion-mnist"])
    p.add_argument("--data-dir", type=input_dir,
                   help="directory of the four IDX files (default: $NPCNN_DATA_DIR)")
    p.add_argument("--epochs", type=positive_int, default=8, help="passes over the training set (default 8)")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="seeds the initialisation and the shuffling: a run is repeatable (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=LEARNING_RATE, default=2e-3,
                   help="peak learning rate of Adam (cosine decay), in (0, 1]")
    p.add_argument("--save-every", type=non_negative_int, default=0, metavar="K",
                   help="also write a checkpoint after every K-th epoch (PATH.epochNN.pt); 0: only the last")
    p.add_argument("--device", type=non_empty_str, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--out", type=output_file, required=True, help="checkpoint to write (atomically)")
    p.set_defaults(run=run)


# Adam's step is about lr in every weight: above 1 a run only diverges.
LEARNING_RATE = bounded(float, 0, 1, low_open=True)


def check_outputs(args):
    """Fail before hours of work, not after: every checkpoint the run will
    write (the per-epoch ones too) must be a writable file, not a folder."""
    for epoch in saved_epochs(args.epochs, args.save_every):
        try:
            output_file(epoch_path(args.out, epoch))
        except BadArgument as err:
            raise ValueError(f"--save-every {args.save_every}: {err}") from None


def run(args):
    check_outputs(args)
    pick_device(args.device)              # a device that is not there: refused before the data loads
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
