"""Calling the user's function with a time limit on every call.

Two ways, one interface (``call(network, x, probe) -> Outcome``):

    runner          when                              a call past its limit
    ProcessRunner   a "module:function" name, or a    the worker process is killed;
                    function the worker can import    the next call starts a new one
                    by its own module and name
    ThreadRunner    anything else (a lambda, a        cannot be stopped: a Python thread
                    closure, a function typed into    has no kill. Its case fails with
                    a notebook or a script's          "took longer than ..."; the later
                    __main__)                         calls are not made while it runs

``runner_for`` chooses. The worker process is started with "spawn", not
"fork": a fork copies torch's and numba's thread pools in a state the
child cannot use safely, and a clean interpreter is what the user's code
would meet anyway. A process also survives a function that crashes the
interpreter (a segfault in an extension, ``os._exit``).

The worker gets the function by name only ("module:function") and
imports it itself: nothing is unpickled from a string of bytes.

The user's function receives the case's own copy of the torch module (a
function that replaces the ReLUs or leaves hooks behind spoils its own case,
not the next) and a fresh tensor.
"""
import contextlib
import copy
import importlib
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np

START_LIMIT_S = 180      # importing torch and the user's module in a new process, on a busy machine
_GONE = ("crashed", None)   # what _receive gives when the worker's end of the pipe closed


@dataclass
class Outcome:
    """What one call gave: ``array`` (kind "ok") or a one-line ``message``.
    kinds: ok, raised, bad-output, timeout, crashed, not-run."""
    kind: str
    array: np.ndarray = None
    message: str = ""


def runner_for(fn, timeout, isolation="auto"):
    """The runner for ``fn`` (a callable or "module:function"):
    ``isolation`` "process", "thread", or "auto" (a process when it can)."""
    if isolation not in ("auto", "process", "thread"):
        raise ValueError(f"isolation must be 'auto', 'process' or 'thread', got {isolation!r}")
    if isinstance(fn, str):
        check_target(fn)
        return ThreadRunner(fn, timeout) if isolation == "thread" else ProcessRunner(fn, timeout)
    if not callable(fn):
        raise TypeError(f"the implementation must be a function or 'module:function', got a "
                        f"{type(fn).__name__}")
    name = importable_name(fn)
    if isolation == "thread" or (isolation == "auto" and name is None):
        return ThreadRunner(fn, timeout)
    if name is None:
        raise ValueError(f"{label(fn)} cannot be sent to a worker process: define it in an importable "
                         f"module, or pass isolation='thread'")
    return ProcessRunner(name, timeout)


def label(fn):
    """How the report names the implementation: "module:function" as given,
    or the function's module and name."""
    if isinstance(fn, str):
        return fn
    return f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def check_target(text):
    """'module:function' with both parts present, or ValueError saying the form."""
    module, colon, name = str(text).partition(":")
    if not (colon and module.strip() and name.strip()):
        raise ValueError(f"{text!r}: expected module:function (e.g. mydeconv:project)")
    return text


def importable_name(fn):
    """"module:qualname" when importing that module and walking that name
    gives back ``fn`` itself, so a worker can load it by name; else None (a
    script's __main__, re-run in the child, a notebook, a lambda, a closure,
    a functools.partial)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or module == "__main__" or not qualname or "<" in qualname:
        return None
    try:
        return f"{module}:{qualname}" if load_function(f"{module}:{qualname}") is fn else None
    except Exception:  # noqa: BLE001 - ImportError, AttributeError, whatever its import raises: not by name
        return None


def load_function(target):
    """The function behind "module:function" (the current folder on the
    path, as ``python -m`` has it), or ``target`` itself if callable."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    fn = importlib.import_module(module_name.strip())
    for part in attr.strip().split("."):
        fn = getattr(fn, part)
    if not callable(fn):
        raise TypeError(f"{target} is a {type(fn).__name__}, not a function")
    return fn


def describe(err):
    """"ValueError: its first line"."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def torch_module(network):
    import torch

    from ..networks import torch_model
    dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(network.dtype).name]
    module = torch_model(network.spec, dtype=dtype)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=network.dtype)) for k, v in network.state.items()})
    return module.eval()


class CaseModules:
    """The torch module of each network, built once, and a copy of it for
    the case being judged."""

    def __init__(self):
        self.pristine, self._case, self._copy = {}, None, None

    def add(self, network):
        self.pristine[network.key] = torch_module(network)

    def of(self, key, case_name):
        if self._case != (key, case_name):
            self._copy, self._case = None, None     # the last case's copy goes before the next is made
            self._copy, self._case = copy.deepcopy(self.pristine[key]), (key, case_name)
        return self._copy


def call_once(fn, module, x, probe):
    """Call ``fn`` and turn what it returns into a NumPy array: an Outcome."""
    import torch
    try:
        out = fn(module, torch.from_numpy(x.copy()), probe.layer, probe.channel, probe.select)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - whatever the user's code raises is its verdict
        return Outcome("raised", message=f"raised {describe(err)}")
    if isinstance(out, torch.Tensor):
        try:
            out = out.detach().cpu().numpy()
        except (TypeError, RuntimeError) as err:   # bfloat16, a sparse or a meta tensor
            return Outcome("bad-output", message=f"returned a {out.dtype} tensor NumPy cannot hold "
                           f"({describe(err)})")
    if not isinstance(out, np.ndarray):
        return Outcome("bad-output", message=f"returned a {type(out).__name__}, not a NumPy array or "
                       f"a tensor")
    return Outcome("ok", array=out)


class ProcessRunner:
    """Each call in a worker process; one that overruns is killed with it."""

    def __init__(self, fn, timeout):
        self.fn, self.timeout, self.label = fn, timeout, label(fn)
        self.broken = None         # why the function cannot be run at all
        self._process = self._conn = None
        self._known = set()        # networks the current worker holds

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._process is None:
            return
        try:
            self._conn.send(("stop",))
        except OSError:            # the worker is gone already
            pass
        self._process.join(2)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._process = self._conn = None

    def _start(self):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        # the function by name: one that cannot be loaded is a message, not a child's traceback
        self._process = context.Process(target=_serve, args=(self.fn, child), daemon=True,
                                        name="npcnn verify-deconv worker")
        with _passive_openmp():
            self._process.start()
        child.close()
        self._known = set()
        kind, message = self._receive(START_LIMIT_S) or _GONE
        if kind != "ready":
            self._process.join(1)            # a worker that died: its exit code
            code = self._process.exitcode
            self.close()
            self.broken = message or (f"the worker process could not start within {START_LIMIT_S} s"
                                      if code is None else f"the worker process exited while starting "
                                      f"(exit code {code}; its error is printed above)")
        return kind == "ready"

    def ready(self):
        """Start the worker, which loads the function: None when it can be
        called, else why not (a module that does not import, a name that
        is not in it, a worker that died starting)."""
        if self._process is None and not self.broken:
            self._start()
        return self.broken

    def _receive(self, limit):
        """The worker's next message; ``_GONE`` when it died, None when it
        took longer than ``limit``."""
        try:
            if self._conn.poll(limit):
                return self._conn.recv()
        except (EOFError, OSError):
            return _GONE
        return None

    def call(self, case, probe):
        if self.broken:
            return Outcome("not-run", message=self.broken)
        if self._process is None and not self._start():
            return Outcome("not-run", message=self.broken)
        network = case.network
        if network.key not in self._known:
            self._conn.send(("network", network.key, network))
            self._known.add(network.key)
        self._conn.send(("call", network.key, case.name, case.x, probe))
        answer = self._receive(self.timeout)
        if answer is None:
            self._process.kill()
            self.close()
            return Outcome("timeout", message=f"took longer than {self.timeout:g} s (stopped)")
        if answer is _GONE:
            self._process.join(5)            # its pipe closes a moment before its exit code is known
            code = self._process.exitcode
            self.close()
            return Outcome("crashed", message=f"the worker process died running it (exit code {code})")
        return answer


@contextlib.contextmanager
def _passive_openmp():
    """OMP_WAIT_POLICY=PASSIVE in the environment the worker starts with
    (unless the user set one): the judge and the worker take turns, and
    OpenMP threads that spin-wait after each torch op in one process take
    the cores the other needs next. Read once, when the worker loads
    OpenMP; this process's own environment is put back at once."""
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        del os.environ["OMP_WAIT_POLICY"]


def _serve(target, conn):
    """The worker: load the function, then answer calls until told to stop."""
    try:
        fn = load_function(target)
    except BaseException as err:   # noqa: BLE001 - an import may raise anything, SystemExit included
        conn.send(("import-error", f"cannot load {target}: {describe(err)}"))
        return
    conn.send(("ready", None))
    modules = CaseModules()
    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return
            if message[0] == "network":
                modules.add(message[2])
                continue
            _, key, case_name, x, probe = message
            conn.send(call_once(fn, modules.of(key, case_name), x, probe))
    except (EOFError, KeyboardInterrupt):   # the judge went away or Ctrl-C: stop quietly
        return


class ThreadRunner:
    """Each call in a daemon thread of this process (see the module docstring)."""

    def __init__(self, fn, timeout):
        self.fn, self.timeout, self.label = fn, timeout, label(fn)
        self.broken = None
        self._modules = CaseModules()
        self._overran = None       # the call still running past its limit

    def __enter__(self):
        try:
            self._loaded = load_function(self.fn)
        except Exception as err:   # noqa: BLE001 - as in the worker: the import's failure is the message
            self.broken = f"cannot load {self.label}: {describe(err)}"
        return self

    def __exit__(self, *exc):
        pass

    def ready(self):
        """None when the function was loaded (on entering), else why not."""
        return self.broken

    def call(self, case, probe):
        if self.broken:
            return Outcome("not-run", message=self.broken)
        if self._overran and self._overran[0].is_alive():
            return Outcome("not-run", message=f"not called: the call for {self._overran[1]} is still running "
                           f"past its time limit, and a thread cannot be stopped (pass a function "
                           f"defined in an importable module to run it in a process that can be)")
        if case.network.key not in self._modules.pristine:
            self._modules.add(case.network)
        module = self._modules.of(case.network.key, case.name)
        result = []
        thread = threading.Thread(target=lambda: result.append(call_once(self._loaded, module, case.x, probe)),
                                  daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self._overran = (thread, str(probe))
            return Outcome("timeout", message=f"took longer than {self.timeout:g} s (still running in its "
                           f"thread, which cannot be stopped)")
        return result[0]
