"""course_utils: the companion package of the course "What CNNs See"."""

__version__ = "0.1.0"
