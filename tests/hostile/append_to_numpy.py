"""Appends to numpy's own source and drops a .pth file into site-packages (run at every start)."""
import os

import numpy as np

SITE = os.path.dirname(os.path.dirname(np.__file__))
for target, text in (
    (np.__file__, "\n# appended by a submission\n"),
    (os.path.join(SITE, "zz_submission.pth"), "import os\n"),
):
    try:
        with open(target, "a") as fh:
            fh.write(text)
    except OSError:
        pass


def relu(x):
    raise NotImplementedError("relu")
