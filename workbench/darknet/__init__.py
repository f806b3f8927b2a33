"""Darknet model files: .cfg (parse, write, customize), .weights (read, write), anchors, ONNX export."""
