"""SST-2 (Socher et al. 2013; GLUE, Wang et al. 2018): movie-review sentences and phrases
labelled negative (0) or positive (1), lowercased and PTB-tokenised.

    sentences, labels = load_sst2("train")     # 67 349 phrases and sentences, labels 0/1
    sentences, labels = load_sst2("dev")       # 872 full sentences (GLUE's test is unlabelled)

The files come through datasets.download (cache, $GRADSCHOOL_MIRROR, or the network) and are
checked against the SHA-256s below, those of GLUE's SST-2 train.tsv and dev.tsv ("sentence<TAB>
label" with a header row). Each sentence is returned without its trailing space.
"""

from __future__ import annotations

from .download import DatasetError, RemoteFile, fetch

FOLDER = "sst2"
SOURCE = "https://raw.githubusercontent.com/eyalbd2/Reproducing-AutoPrompt/" \
         "6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2/"
FILES = {
    "train": RemoteFile("train.tsv", (SOURCE + "train_full.tsv",),
                        "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
    "dev": RemoteFile("dev.tsv", (SOURCE + "dev.tsv",),
                      "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
}
HEADER = "sentence\tlabel"


def load_sst2(split: str = "train", progress: bool = True) -> tuple[list[str], list[int]]:
    """(sentences, labels) of `split`, "train" or "dev", in file order."""
    if split not in FILES:
        raise ValueError(f"split must be one of {tuple(FILES)}, got {split!r}")
    file = FILES[split]
    path = fetch(FOLDER, [file], progress)[file.name]
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    if header != HEADER:
        raise DatasetError(f"{path} does not start with the header {HEADER!r}")
    sentences, labels = [], []
    for row in rows:
        sentence, label = row.rsplit("\t", 1)
        sentences.append(sentence.strip())
        labels.append(int(label))
    return sentences, labels
