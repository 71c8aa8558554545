"""npcnn: CNN layers in readable NumPy and fast Numba, proven equal to PyTorch."""
