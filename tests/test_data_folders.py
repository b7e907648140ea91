import numpy as np
import pytest
from PIL import Image

from course_utils import data


def _jpeg(path, colour, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")


@pytest.fixture
def food_root(tmp_path):
    root = tmp_path / "food-101"
    classes = {"apple_pie": (200, 150, 50), "pizza": (220, 30, 30), "omelette": (240, 220, 60),
               "sushi": (250, 250, 250)}
    train, test = [], []
    for cls, colour in classes.items():
        for i in range(5):
            _jpeg(root / "images" / cls / f"{i}.jpg", colour)
            (train if i < 3 else test).append(f"{cls}/{i}")
    (root / "meta").mkdir()
    (root / "meta" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "meta" / "test.txt").write_text("\n".join(test) + "\n")
    return root


def test_food101_folder_follows_the_dataset_split_and_class_subset(food_root):
    train = data.food101(root=food_root, split="train")
    test = data.food101(root=food_root, split="test")
    assert train.class_names == ("apple_pie", "pizza", "omelette")
    assert len(train) == 9 and len(test) == 6
    assert sorted(np.bincount(train.labels).tolist()) == [3, 3, 3]
    assert not {f.name for f in train.files} & {f.name for f in test.files} or all(
        a != b for a in train.files for b in test.files)
    assert all("sushi" not in str(f) for f in train.files + test.files)
    # the label of each file is its folder's class
    for f, y in zip(train.files, train.labels):
        assert f.parent.name == train.class_names[y]


def test_food101_pipeline_yields_resized_images_with_their_labels(food_root):
    ds = data.food101(root=food_root, split="train").dataset(image_size=16, batch_size=4)
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (9, 16, 16, 3) and images.max() <= 255
    pizza = images[labels == 1]
    assert np.allclose(pizza.mean(axis=(0, 1, 2)), [220, 30, 30], atol=8)  # red, as written


def test_food101_missing_folder_says_which_layout_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta/train.txt"):
        data.food101(root=tmp_path / "nowhere", source="folder")


def test_food101_unknown_class_lists_the_available_ones(food_root):
    with pytest.raises(ValueError, match="sushi"):
        data.food101(classes=("apple_pie", "hotdog"), root=food_root)


@pytest.fixture
def pets_root(tmp_path):
    root = tmp_path / "PetImages"
    for i in range(20):
        _jpeg(root / "Cat" / f"{i}.jpg", (100, 100, 100))
        _jpeg(root / "Dog" / f"{i}.jpg", (10, 200, 10))
    (root / "Cat" / "666.jpg").write_bytes(b"")  # empty file, as in the real archive
    (root / "Dog" / "11702.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (8, 8)).save(root / "Dog" / "png_in_disguise.jpg", "PNG")
    (root / "Cat" / "Thumbs.db").write_bytes(b"windows junk")
    return root


def test_cats_vs_dogs_skips_and_counts_corrupt_files(pets_root):
    train = data.cats_vs_dogs(root=pets_root, split="train")
    test = data.cats_vs_dogs(root=pets_root, split="test")
    assert len(train) + len(test) == 40
    assert len(train.skipped) + len(test.skipped) == 3
    assert set(train.files).isdisjoint(test.files)
    assert 0.05 < len(test) / 40 < 0.45  # about a fifth
    for f, y in zip(train.files, train.labels):
        assert f.parent.name == ("Cat", "Dog")[y]


def test_cats_vs_dogs_split_is_stable(pets_root):
    a = data.cats_vs_dogs(root=pets_root, split="test").files
    b = data.cats_vs_dogs(root=pets_root, split="test").files
    assert a == b


def test_cats_vs_dogs_missing_folder_says_which_layout_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cat/\\*.jpg"):
        data.cats_vs_dogs(root=tmp_path, source="folder")


def test_bad_split_is_rejected(food_root):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.food101(root=food_root, split="validation")


@pytest.mark.parametrize("name", sorted(data.SAMPLES))
def test_sample_images_are_rgb_photos_in_pixel_range(name):
    img = data.sample_image(name, size=64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 255 and img.std() > 10  # a photo, not a blank


def test_unknown_sample_lists_valid_names():
    with pytest.raises(ValueError, match="chelsea"):
        data.sample_image("lena")


def test_two_photos_puts_each_photo_in_its_half_and_the_masks_split_the_picture():
    from PIL import Image

    image, masks = data.two_photos("chelsea", "coffee", size=64)
    assert image.shape == (64, 64, 3) and masks.shape == (2, 64, 64)
    assert not (masks[0] & masks[1]).any() and (masks[0] | masks[1]).all()
    assert masks[0][:, :32].all() and masks[1][:, 32:].all()
    # the left half is the cat's central strip (300 x 451 photo: 150 px wide, centred)
    from skimage import data as skdata

    cat = skdata.chelsea()
    left = (cat.shape[1] - 150) // 2
    strip = np.asarray(Image.fromarray(cat[:, left:left + 150]).resize((32, 64), Image.BILINEAR))
    np.testing.assert_array_equal(image[:, :32], strip.astype("float32"))
    assert np.abs(image[:, 32:] - image[:, :32]).mean() > 20  # the right half is another photo
    with pytest.raises(ValueError, match="even"):
        data.two_photos(size=63)
    with pytest.raises(ValueError, match="chelsea"):
        data.two_photos("lena")
