"""Data side: sources, region maps, perturbations, benchmark building and datasets."""
