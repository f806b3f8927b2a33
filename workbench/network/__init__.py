"""The network as Keras: a model built from a darknet .cfg and darknet weights in and out.

Shared by training and the TensorFlow detection engine, so it sits below both; TensorFlow
is imported inside the functions that build or run a model.
"""
