"""The in-memory label model: Box, ImageRecord, ClassList and Dataset.

Formats read files into these objects and the data package opens and saves folders of them;
this package imports nothing of the workbench but its errors.
"""
