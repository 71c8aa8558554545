"""The Dask client a ``--scheduler`` option names, checked before any work:

    local:N            a LocalCluster of N worker processes on this machine (one thread each)
    tcp://host:port    a running scheduler; it must answer within ``ANSWER_TIMEOUT_S`` seconds

Dask is imported here only, so the engine works without it."""
import contextlib
import importlib


def parse_scheduler(text):
    """("local", N) or ("address", text); ValueError naming --scheduler otherwise."""
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not (count.isdigit() and 1 <= int(count) <= 256):
            raise ValueError(f"--scheduler {text}: local:N needs N workers, 1 to 256")
        return "local", int(count)
    if text.startswith(("tcp://", "tls://", "inproc://")):
        return "address", text
    raise ValueError(f"--scheduler {text!r}: expected local:N (a cluster of N worker processes here) "
                     f"or tcp://host:port (a running Dask scheduler)")


# seconds a tcp:// scheduler has to answer
ANSWER_TIMEOUT_S = 10


def check_scheduler(text, timeout=None):
    """Refuse, before any work, a ``--scheduler`` that names no scheduler
    or one that does not answer, or Dask missing (a command would otherwise
    draw its other figures first and fail late); a local cluster is started
    when used."""
    if text is None:
        return
    if parse_scheduler(text)[0] == "local":
        try:
            importlib.import_module("dask.distributed")   # only whether it imports
        except ImportError:
            raise ValueError(f"--scheduler {text}: Dask is not installed "
                             f"(pip install 'dask[distributed]')") from None
        return
    with dask_client(text, timeout):
        pass


@contextlib.contextmanager
def dask_client(text, timeout=None):
    """Yields a ``dask.distributed.Client`` for ``text`` (None: yields None,
    the work runs in this process); a local cluster is stopped afterwards.
    ``timeout``: seconds an address has to answer (``ANSWER_TIMEOUT_S``)."""
    timeout = ANSWER_TIMEOUT_S if timeout is None else timeout
    if text is None:
        yield None
        return
    kind, value = parse_scheduler(text)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(f"--scheduler {text}: Dask is not installed (pip install 'dask[distributed]')") from None
    if kind == "local":
        with LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(value, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ValueError(f"--scheduler {value}: no Dask scheduler answered within {timeout} s "
                         f"({str(err).splitlines()[0][:120]})") from None
    try:
        yield client
    finally:
        client.close()
