"""Model bundles: the on-disk format, the registry rows, and ONNX serving."""
