"""Benchmarks of npcnn against torch: ``python -m benchmarks.run`` or ``npcnn bench``."""
