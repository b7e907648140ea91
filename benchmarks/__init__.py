"""Benchmarks of course_utils, run on demand: ``python -m benchmarks`` (all) or
``python -m benchmarks.<name>``. Each writes its latest table to ``benchmarks/results/``."""
