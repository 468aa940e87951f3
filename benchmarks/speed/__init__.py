"""Speed benchmarks: throughput and latency of harmonykit's stages."""
