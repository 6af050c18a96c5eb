"""Evaluation: held-out likelihoods, baselines, metrics."""
