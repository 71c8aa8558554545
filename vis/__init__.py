"""Figures of the npcnn studies, drawn with matplotlib (vis -> bridge -> npcnn)."""
