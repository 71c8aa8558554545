"""What ``npcnn atlas`` and ``npcnn deconv`` share for statistics over a
whole split of the data (``npcnn.stats``): the options, the split as a
source, and the tally itself, in this process or on Dask.

    --split train|test     which split the statistics run over
    --limit N              only its first N images
    --scheduler SPEC       local:N (a LocalCluster of N worker processes),
                           tcp://host:port (a running scheduler); default: this process
    --shard-size N         images per task

The workers read the network from an npcnn weight file (``Model.save``),
so a torch checkpoint is converted into one in a temporary folder first:
workers need no torch.
"""
import tempfile
from pathlib import Path

from npcnn.data import load_mnist, to_tensor
from npcnn.stats import ArraySource, tally
from npcnn.stats.cluster import dask_client, parse_scheduler

from .arguments import BadArgument, positive_int
from .progress import progress_bar


def scheduler(text):
    """argparse type of --scheduler: local:N or tcp://host:port, checked now (the connection when used)."""
    try:
        parse_scheduler(text)
    except ValueError as err:
        raise BadArgument(str(err).split(": ", 1)[-1]) from None
    return text


def add_arguments(p, default_split, what):
    p.add_argument("--split", choices=["train", "test"], default=default_split,
                   help=f"the split {what} run over (default: {default_split})")
    p.add_argument("--limit", type=positive_int, help="only the first N images of the split")
    p.add_argument("--scheduler", type=scheduler, help="local:N (N worker processes here) or tcp://host:port "
                   "(a running Dask scheduler); default: this process")
    p.add_argument("--shard-size", type=positive_int, default=5000, help="images per task (default 5000)")


def load_split(dataset, split, data_dir, limit=None):
    """The split as a Dataset, cut to its first ``limit`` images."""
    data = load_mnist(dataset, split, data_dir=data_dir, verbose=False)
    if limit is None or limit >= len(data):
        return data
    return type(data)(data.images[:limit], data.labels[:limit], data.name, data.split, data.source)


def inputs(model, data, normalization):
    """The images of ``data`` as the network's input."""
    return to_tensor(data.images, normalization["mean"], normalization["std"], dtype=model.dtype)


def run_tally(model, source, stats, args, label):
    """``tally`` over ``source`` with the model's weights, on the scheduler
    the options name (a progress bar over shards); returns the statistics."""
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "weights.npz"
        model.save(weights)
        with dask_client(args.scheduler) as client:
            if client is not None:
                print(f"{label}: on the Dask scheduler {client.scheduler.address}{_dashboard(client)}")
            total = -(-len(source) // args.shard_size)
            with progress_bar(total, label, unit="shard") as progress:
                return tally(weights, source, stats, client=client, shard_size=args.shard_size,
                             progress=lambda done, _: progress(done))


def _dashboard(client):
    """", dashboard: <link>" when the scheduler serves one: ``client.dashboard_link``
    makes a link from the configured template even where none was started
    (our local clusters start none)."""
    services = client.scheduler_info().get("services", {})
    return f", dashboard: {client.dashboard_link}" if "dashboard" in services else ""


def source_of(data):
    return ArraySource(data.images, data.labels, f"{data.name} {data.split} ({data.source})")
