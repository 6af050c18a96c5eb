"""The shipped bundles, a folder each: the package `cadenza.models` (pyproject.toml maps it
here), so a wheel carries them and cadenza.bundle.models_dirs() finds them through
importlib.resources in any install."""
