"""Benchmarks of course_utils, run on demand: ``python -m benchmarks`` (all) or
``python -m benchmarks.<name>``. Each writes its latest table to ``benchmarks/results/``."""

# course_utils before TensorFlow, as in the lessons: every benchmark module is imported through
# this package, so TensorFlow's oneDNN CPU kernels are on as the course runs them
# (course_utils/__init__.py); TF_ENABLE_ONEDNN_OPTS=0 to compare with the default kernels.
import course_utils  # noqa: F401
