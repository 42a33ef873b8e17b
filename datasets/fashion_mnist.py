"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70 000 grey 28×28 images of clothing, 10 classes.

    images, labels = load_fashion_mnist("train")   # uint8 (60000, 28, 28), int64 (60000,)
    images, labels = load_fashion_mnist("test")    # uint8 (10000, 28, 28), int64 (10000,)

The four gzip IDX files come through datasets.download (cache, $GRADSCHOOL_MIRROR, or the
network) and are checked against the SHA-256s below, those of the upstream files
(zalandoresearch/fashion-mnist, data/fashion/). MIT licence, © 2017 Zalando SE.
"""

from __future__ import annotations

import gzip

import numpy as np

from .download import RemoteFile, fetch

FOLDER = "fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{}",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/{}")
_SHA256 = {  # as in the mirror's SHA256SUMS (tests/test_datasets_fashion.py compares them)
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FILES = tuple(RemoteFile(name, tuple(url.format(name) for url in _URLS), digest)
              for name, digest in _SHA256.items())
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000)}
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: bytes) -> np.ndarray:
    """Decode an (uncompressed) IDX file: two zero bytes, a type code, the number of dimensions,
    each dimension as a big-endian int32, then the values in C order."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError("not an IDX file: it should start with 0x00 0x00 <type> <ndim>")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("IDX file truncated inside its header")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"IDX file of shape {shape} should hold {expected} bytes of values, "
                         f"found {len(data) - header}")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, a writable copy


def load_fashion_mnist(split: str = "train",
                       progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the "train" or "test" split."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images_name, labels_name, count = SPLITS[split]
    paths = fetch(FOLDER, [f for f in FILES if f.name in (images_name, labels_name)], progress)
    images = parse_idx(gzip.decompress(paths[images_name].read_bytes()))
    labels = parse_idx(gzip.decompress(paths[labels_name].read_bytes())).astype(np.int64)
    if images.shape != (count, 28, 28) or labels.shape != (count,):
        raise ValueError(f"Fashion-MNIST {split}: unexpected shapes {images.shape}, {labels.shape}")
    return images, labels
