"""The course's sample photographs, loaded offline.

Every photo here ships inside an installed wheel (scikit-image's
``skimage/data`` folder or scikit-learn's ``sklearn/datasets/images``), so
loading one never touches the network. That matters: the book is built on
machines without network access, and a figure that depends on a download
would break the build.

Photos are returned as float64 arrays with values in ``[0, 255]``, the scale
the lectures use when they write pixel values (a box filter over a block of
90s averages to 30, and so on).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["PHOTOS", "available_photos", "load_photo"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


#: Name -> loader. Only images bundled with the installed packages are listed;
#: scikit-image images that need ``pooch`` to download are deliberately left out.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "camera": _skimage("camera"),  # 512x512 gray, the cameraman
    "astronaut": _skimage("astronaut"),  # 512x512 RGB
    "coffee": _skimage("coffee"),  # 400x600 RGB
    "chelsea": _skimage("chelsea"),  # 300x451 RGB, a cat
    "coins": _skimage("coins"),  # 303x384 gray
    "moon": _skimage("moon"),  # 512x512 gray
    "page": _skimage("page"),  # 191x384 gray, scanned text
    "text": _skimage("text"),  # 172x448 gray
    "rocket": _skimage("rocket"),  # 427x640 RGB
    "brick": _skimage("brick"),  # 512x512 gray texture
    "grass": _skimage("grass"),  # 512x512 gray texture
    "gravel": _skimage("gravel"),  # 512x512 gray texture
    "china": _sklearn("china.jpg"),  # 427x640 RGB (scikit-learn)
    "flower": _sklearn("flower.jpg"),  # 427x640 RGB (scikit-learn)
}


def available_photos() -> list[str]:
    """Return the names :func:`load_photo` accepts, sorted.

    Returns
    -------
    list of str
        The photo names.
    """
    return sorted(PHOTOS)


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 luma weights, the same as skimage.color.rgb2gray uses up to
    # a rounding difference; kept local so the result stays on the 0..255 scale.
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    # anti_aliasing: shrinking without it aliases the fine textures this
    # chapter wants to show being filtered.
    out = resize(image, size + image.shape[2:], order=1, mode="reflect",
                 anti_aliasing=True, preserve_range=True)
    return np.clip(out, 0.0, 255.0)


def load_photo(name: str = "camera", gray: bool = True,
               size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Load one of the course's sample photos as floats in ``[0, 255]``.

    Parameters
    ----------
    name : str, default "camera"
        One of :func:`available_photos`.
    gray : bool, default True
        If True return a single-channel image ``(H, W)``; colour photos are
        converted with the BT.601 luma weights. If False return ``(H, W, 3)``;
        a gray photo is repeated over three channels so the shape is fixed.
    size : int or (int, int), optional
        Resize to ``(size, size)`` or ``(height, width)`` with anti-aliasing.
        None keeps the original size.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` if ``gray`` else ``(H, W, 3)``, dtype float64, values in
        ``[0, 255]``.

    Raises
    ------
    ValueError
        If ``name`` is not a known photo (the message lists the known ones) or
        ``size`` is not positive.

    Examples
    --------
    >>> x = load_photo("camera", size=128)
    >>> x.shape, x.dtype, bool(0.0 <= x.min() <= x.max() <= 255.0)
    ((128, 128), dtype('float64'), True)
    """
    if name not in PHOTOS:
        raise ValueError(
            f"load_photo: unknown photo name {name!r}; "
            f"available: {', '.join(available_photos())}"
        )
    image = np.asarray(PHOTOS[name](), dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 4:  # drop an alpha channel
        image = image[..., :3]

    if gray and image.ndim == 3:
        image = _to_gray(image)
    elif not gray and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)

    if size is not None:
        hw = (size, size) if np.isscalar(size) else tuple(size)
        if len(hw) != 2 or min(hw) < 1:
            raise ValueError(
                f"load_photo: size must be a positive int or (height, width), got {size!r}"
            )
        image = _resize(image, (int(hw[0]), int(hw[1])))
    return image
