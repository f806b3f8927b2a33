"""Detection evaluation internals. Import the public API from ``workbench.evaluation.evaluate``.

- ``inputs``: GroundTruth and Predictions, validated arrays for one image.
- ``matching``: greedy score-ordered matching of predictions to ground truth, vectorized over
  every (image, class) group and every IoU threshold at once.
- ``curves``: precision-recall curves and the three average-precision definitions.
- ``results``: the result objects (Evaluation, ClassResult, ImageResult, PrecisionRecall).
"""
