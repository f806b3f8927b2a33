"""Training in TensorFlow: a Keras model built from a darknet cfg, weights in and out, the loss.

Importing this package does not import TensorFlow; its modules do, so the CLI imports them
inside the ``train`` verb only, after ``workbench.tf_runtime.import_tensorflow`` has loaded it
quietly.
"""
