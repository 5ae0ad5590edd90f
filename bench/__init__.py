"""Benchmarks. Each prints its figures beside baselines measured in the same run, as ratios, last."""
