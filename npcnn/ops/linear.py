"""Fully connected layer: the readable NumPy reference.

Dimension letters: N rows (the batch, or all leading dimensions together),
I input features, O output features. ``weight`` is (O, I) as in torch.
"""
import math


def linear(x, weight, bias):
    """y = x W^T + b, as ``torch.nn.functional.linear``.

    Inputs:
        x: (*, I);  weight: (O, I);  bias: (O,) or None
    Returns:
        y: (*, O),  y[..., o] = b[o] + sum_i x[..., i] * W[o, i]
    """
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(grad_output, x, weight):
    """Gradients of ``linear``.

    Returns (dx, dw, db):
        dx = dy W            (*, I)
        dw = dy^T x          (O, I), summed over every leading dimension
        db = sum over rows of dy   (O,)
    """
    N = math.prod(x.shape[:-1])                    # -1 in a reshape is ambiguous for 0 features
    dy = grad_output.reshape(N, weight.shape[0])   # (N, O)
    x2 = x.reshape(N, weight.shape[1])             # (N, I)
    dx = (dy @ weight).reshape(x.shape)
    return dx, dy.T @ x2, dy.sum(axis=0)
