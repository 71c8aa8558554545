"""A progress bar for the long optimisations (activation maximization,
feature inversion, deep dream), drawn on stderr by tqdm: the bridge's
methods take a plain ``progress(step, value)`` callback, so they stay free
of any display code."""
import contextlib

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(total, description, label="objective"):
    """Yields a ``progress(step, value)`` callback for ``total`` steps that
    advances the bar to ``step`` and shows the mean of ``value``."""
    bar = tqdm(total=total, desc=description, unit="step", leave=True, dynamic_ncols=True)

    def progress(step, value):
        bar.update(step - bar.n)
        bar.set_postfix_str(f"{label} {float(value.float().mean()):.4g}", refresh=False)

    try:
        yield progress
    finally:
        bar.close()
