"""Data sets on disk: opening and saving folders in their own layout, splits, images, class
edits, statistics, conversion and synthetic data.
"""
