"""Tiny Shakespeare (Karpathy 2015, char-rnn): 40 000 lines of Shakespeare's plays in one file.

    text = load_tiny_shakespeare()            # str, 1 115 394 characters, 65 distinct
    train = load_tiny_shakespeare("train")    # the first 90% of the characters
    val = load_tiny_shakespeare("val")        # the last 10%, as nanoGPT's shakespeare_char

The file comes through datasets.download (cache, $GRADSCHOOL_MIRROR, or the network) and is
checked against the SHA-256 below, that of input.txt in karpathy/char-rnn (data/tinyshakespeare/,
unchanged since its first commit). The text is public domain; the repository says MIT.
"""

from __future__ import annotations

from .download import RemoteFile, fetch

FOLDER = "tinyshakespeare"
FILE = RemoteFile(
    "input.txt",
    ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
)
SPLITS = ("all", "train", "val")
TRAIN_FRACTION = 0.9


def load_tiny_shakespeare(split: str = "all", progress: bool = True) -> str:
    """The text of `split`: "all", "train" (the first 90% of characters) or "val" (the rest)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = fetch(FOLDER, [FILE], progress)[FILE.name]
    text = path.read_text(encoding="utf-8")
    boundary = int(TRAIN_FRACTION * len(text))
    return {"all": text, "train": text[:boundary], "val": text[boundary:]}[split]
