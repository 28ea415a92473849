"""``mnist``: MNIST-format image classification data (MNIST, Fashion-MNIST) from IDX files.

Nothing is downloaded and nothing is cached on disk: the four files are read and validated at each
call. Where no folder is given, Debian's ``dataset-fashion-mnist`` package provides Fashion-MNIST,
which has MNIST's shapes (60,000 + 10,000 images of 28x28, 10 classes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .idx import read_idx

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")   # Debian's dataset-fashion-mnist
ENV = "KNETAPI_DATA"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIDE = 28          # MNIST's images are SIDE x SIDE
HOW_TO_GET = (
    "To get data, either:\n"
    "  - `apt-get install dataset-fashion-mnist` (Debian) installs Fashion-MNIST, which has "
    f"MNIST's shapes, in {FASHION_MNIST}; or\n"
    f"  - put the four files of MNIST (or of another data set in its format), named "
    f"{', '.join(FILES)} (each may end in .gz), in a folder and pass it as mnist(path=...) or set "
    f"${ENV} to it.")


def mnist(path: str | os.PathLike[str] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training and test sets of MNIST-format data, batch-first with images in NCHW layout.

    Returns ``(xtrain, ytrain, xtest, ytest)``: ``x`` float32 arrays of shape (N, 1, 28, 28), the
    pixels scaled to [0, 1] (the files' bytes / 255); ``y`` int64 arrays of shape (N,), the class
    labels as stored (0-9). MNIST and Fashion-MNIST have N = 60,000 (train) and 10,000 (test).

    The files are read from one folder, the first of: ``path``; the environment variable
    ``$KNETAPI_DATA``; ``/usr/share/datasets/fashion-mnist`` (Fashion-MNIST, from Debian's
    ``dataset-fashion-mnist`` package). A folder that is given is used alone, never passed over
    for the next one. It must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or gzip-compressed (with
    ``.gz`` appended to its name; the raw one is read when both are there). Raises
    ``FileNotFoundError`` saying where it looked and how to get data when files are missing, and
    ``ValueError`` naming the file when one is not what MNIST's format says (see :func:`read_idx`;
    also images that are not 28x28 unsigned bytes, and image and label counts that differ).
    """
    train_images, train_labels, test_images, test_labels = _locate(path)
    xtrain, ytrain = _examples(train_images, train_labels)
    xtest, ytest = _examples(test_images, test_labels)
    return xtrain, ytrain, xtest, ytest


def _locate(path: str | os.PathLike[str] | None) -> list[Path]:
    """The four files, in the order of FILES, from the folder to read; else FileNotFoundError."""
    looked: list[str] = []
    if path is not None:
        folder, origin = Path(path).expanduser(), "the path argument"
        skipped = [f"${ENV}", str(FASHION_MNIST)]
    elif os.environ.get(ENV):
        folder, origin = Path(os.environ[ENV]).expanduser(), f"${ENV}"
        skipped = [str(FASHION_MNIST)]
    else:
        folder, origin = FASHION_MNIST, "Debian's dataset-fashion-mnist package"
        skipped = []
        looked.append(f"  ${ENV}: not set")
    files = [_present(folder, name) for name in FILES]
    if all(files):
        return files
    if not folder.is_dir():
        problem = "does not exist" if not folder.exists() else "is not a folder"
    else:
        problem = "has no " + ", ".join(f"{name}[.gz]" for name, f in zip(FILES, files) if not f)
    looked.append(f"  {folder} ({origin}): {problem}")
    if skipped:
        looked.append(f"  (a folder given as {origin} is used alone: {' and '.join(skipped)} "
                      f"{'are' if len(skipped) > 1 else 'is'} not searched)")
    raise FileNotFoundError("mnist: no MNIST-format data found. Looked in:\n" + "\n".join(looked)
                            + "\n" + HOW_TO_GET)


def _present(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever is a file (the raw one first), or None."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _examples(images_file: Path, labels_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64 from one pair of files."""
    images = read_idx(images_file)
    if images.dtype != np.uint8 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{images_file}: not MNIST images: {images.dtype} values of shape "
                         f"{images.shape}, expected uint8 of shape (N, {SIDE}, {SIDE}) (magic "
                         f"number 0x00000803)")
    labels = read_idx(labels_file)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_file}: not MNIST labels: {labels.dtype} values of shape "
                         f"{labels.shape}, expected uint8 of shape (N,) (magic number 0x00000801)")
    if len(images) != len(labels):
        raise ValueError(f"{labels_file}: {len(labels)} labels, but {images_file} has "
                         f"{len(images)} images")
    x = images.reshape(len(images), 1, SIDE, SIDE).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)
