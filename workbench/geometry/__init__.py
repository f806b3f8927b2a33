"""Box geometry on numpy arrays: conversions, IoU/GIoU/DIoU and NMS with its trace.

The bottom of the core: imports numpy only.
"""
