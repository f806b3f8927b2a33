"""One module per CLI verb; see workbench.cli."""
