"""torch -> ONNX per model kind, parity checks, bundle writing.

`checkpoint.export_checkpoint` exports any kind's checkpoint through the registry of model
kinds (cadenza.kinds); each kind's exporter is a module here; `onnx_io` is the leaf module of
helpers they share (the critics' trainers, which write their own bundles, use it too).
"""
