"""A progress bar for the long optimisations (activation maximization,
feature inversion, deep dream) and for many images, drawn on stderr by
tqdm: the bridge's methods take a plain ``progress(step, value)`` callback,
so they stay free of any display code."""
import contextlib

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(total, description, label="objective", unit="step"):
    """Yields a ``progress(step, value=None)`` callback for ``total`` steps (or
    images, ``unit``) that advances the bar to ``step`` and shows the mean of
    ``value`` when one is given."""
    bar = tqdm(total=total, desc=description, unit=unit, leave=True, dynamic_ncols=True)

    def progress(step, value=None):
        bar.update(step - bar.n)
        if value is not None:
            bar.set_postfix_str(f"{label} {float(value.float().mean()):.4g}", refresh=False)

    try:
        yield progress
    except BaseException:
        bar.leave = False      # a failed run: clear the bar, so the error's one line stands alone on a terminal
        raise
    finally:
        bar.close()
