"""Writing and reading files safely: atomic writes, capped regular-file reads, outputs
that never land on their inputs.
"""
