"""Datasets of the course: Fashion-MNIST, the synthetic shapes set, Food-101, cats vs dogs,
and sample photos from installed packages."""

from course_utils.data.downloads import DownloadError, download
from course_utils.data.fashion import fashion_mnist
from course_utils.data.folders import (
    FOOD_CLASSES,
    PET_CLASSES,
    ImageSet,
    cats_vs_dogs,
    cats_vs_dogs_folder,
    food101,
    food101_folder,
)
from course_utils.data.samples import SAMPLES, sample_image, two_photos
from course_utils.data.synthetic import ShapesData, shapes

__all__ = [
    "FOOD_CLASSES", "PET_CLASSES", "SAMPLES", "DownloadError", "ImageSet", "ShapesData",
    "cats_vs_dogs", "cats_vs_dogs_folder", "download", "fashion_mnist", "food101",
    "food101_folder", "sample_image", "shapes", "two_photos",
]
