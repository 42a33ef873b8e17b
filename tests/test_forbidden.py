"""The static forbidden-API scan: aliases, dynamic tricks, attribution to exercises."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grader.forbidden import scan


@pytest.fixture()
def attention_phase(phase0):
    return replace(
        phase0,
        forbidden_modules=("torch.optim",),
        forbidden_apis=(
            "torch.nn.functional.scaled_dot_product_attention",
            "torch.nn.MultiheadAttention",
        ),
    )


@pytest.mark.parametrize(
    "source",
    [
        "import torch",
        "import torch.nn as nn",
        "from torch import tensor",
        "def relu(x):\n    import torch\n    return x",
        "import numpy as np\nt = __import__('numpy')",
        "x = eval('1')",
        "import importlib",
        "from solutions.phase0_foundations import relu",
        "import grader",
        "import ctypes",
        "import sys\nm = sys.modules['numpy']",
    ],
)
def test_numpy_phase_refuses(source, phase0):
    assert scan(source, phase0), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\ny = F.scaled_dot_product_attention(q, k, v)",
        "from torch.nn import functional\nfunctional.scaled_dot_product_attention(q, k, v)",
        "import torch\nm = torch.nn.MultiheadAttention(4, 2)",
        "from torch.nn import MultiheadAttention",
        "import torch\nf = getattr(torch.nn.functional, 'scaled_dot_product_attention')",
        "from torch import optim",
        "import torch.optim as o",
    ],
)
def test_attribute_phase_refuses(source, attention_phase):
    assert scan(source, attention_phase), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nimport torch.nn.functional as F\ny = F.linear(x, w)",
        "import math\nimport numpy as np\ny = np.exp(1) + math.pi",
        "from .phase0_foundations import relu",
        "text = 'scaled_dot_product_attention is forbidden'",
    ],
)
def test_allowed_code_passes(source, attention_phase):
    assert scan(source, attention_phase) == []


def test_violations_are_attributed_to_the_owning_exercise(phase0):
    source = "import numpy as np\n\ndef softmax(x, axis=-1):\n    import torch\n    return x\n"
    (violation,) = scan(source, phase0)
    assert violation.exercise == "softmax" and violation.line == 4
    assert "import torch" in violation.describe()
    (module_level,) = scan("import torch\n", phase0)
    assert module_level.exercise is None


def test_syntax_errors_are_left_to_the_import(phase0):
    assert scan("def f(:\n", phase0) == []
