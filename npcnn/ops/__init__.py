"""The ops, one concept a file: ``X.py`` the NumPy reference, ``X_numba.py`` the kernels."""
