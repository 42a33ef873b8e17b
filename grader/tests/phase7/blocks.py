"""7.7 BasicBlock and Bottleneck against the same blocks assembled from torch layers with
copied weights (training and eval), a zeroed last γ giving ReLU, and finite differences."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, seeded
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase7._helpers import MISSING, attempt, load_params, normal, tensor

BLOCK_HINT = (
    "out = ReLU(F(x) + shortcut(x)): the ReLU comes after the addition; the shortcut is the "
    "identity unless the stride or the channel count changes, then conv1×1(stride) → BN."
)
BACKWARD_HINT = (
    "x feeds both branches, so dx = (residual branch's dx) + (shortcut's dx, or dz itself for "
    "the identity), with dz = dout·1[z > 0] for z = F(x) + shortcut(x)."
)


def conv(c_in, c_out, kernel, stride=1, padding=0):
    return nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)


class TorchBlock(nn.Module):
    """ReLU(residual(x) + shortcut(x)) from torch layers: the oracle for both block kinds."""

    def __init__(self, residual: list[nn.Module], shortcut: list[nn.Module] | None):
        super().__init__()
        self.residual = nn.Sequential(*residual)
        self.shortcut = nn.Sequential(*shortcut) if shortcut else None

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.residual(x) + skip)


def torch_basic_block(c_in, c_out, stride):
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = [conv(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)]
    return TorchBlock(
        [
            conv(c_in, c_out, 3, stride, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            conv(c_out, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
        ],
        shortcut,
    ).double()


def torch_bottleneck(c_in, width, stride):
    c_out = 4 * width
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = [conv(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)]
    return TorchBlock(
        [
            conv(c_in, width, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            conv(width, width, 3, stride, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            conv(width, c_out, 1),
            nn.BatchNorm2d(c_out),
        ],
        shortcut,
    ).double()


def random_params(model: nn.Module, seed: int) -> list[np.ndarray]:
    """Random weights (γ near 1) copied into the torch model; returned in parameter order."""
    arrays = []
    with torch.no_grad():
        for index, p in enumerate(model.parameters()):
            a = normal(seed + index, tuple(p.shape), scale=0.4)
            if p.ndim == 1 and index % 2 == 1:  # a BatchNorm weight follows its conv weight
                a = a + 1.0
            p.copy_(tensor(a))
            arrays.append(a)
    return arrays


def compare_with_torch(m, student, reference: nn.Module, arrays, x, label, hint=BLOCK_HINT):
    """Training forward, backward (dx and every gradient), then eval forward after training."""
    load_params(student, arrays)
    xt = tensor(x, True)
    y = reference(xt)
    dout = normal(99, tuple(y.shape))
    y.backward(tensor(dout))
    assert_close(student.forward(x), y.detach().numpy(), f"{label}: training forward", hint=hint)
    assert_close(
        student.backward(dout), xt.grad.numpy(), f"{label}: backward dx", hint=BACKWARD_HINT
    )
    grads = run_probe(m, "phase7.call_with_inputs", student, "grads", [])[0]
    names = [name for name, _ in reference.named_parameters()]
    if len(grads) != len(names):
        raise CheckFailed(f"{label}: grads() holds {len(grads)} arrays, params() has {len(names)}.")
    for name, g, p in zip(names, grads, reference.parameters(), strict=True):
        assert_close(g, p.grad.numpy(), f"{label}: the gradient of {name}", hint=BACKWARD_HINT)
    x2 = normal(98, x.shape) * 2
    student.forward(x2)
    with torch.no_grad():
        reference(tensor(x2))
    student.eval()
    reference.eval()
    with torch.no_grad():
        expected = reference(tensor(x)).numpy()
    assert_close(
        student.forward(x),
        expected,
        f"{label}: eval forward after two training ones",
        hint="eval() must reach every BatchNorm, the shortcut's too.",
    )
    student.train()
    reference.train()
    x3 = normal(97, x.shape)
    with torch.no_grad():
        expected = reference(tensor(x3)).numpy()
    assert_close(
        student.forward(x3),
        expected,
        f"{label}: training forward after train() (train → eval → train)",
        hint="train() must put every BatchNorm back into training mode, the shortcut's too.",
    )


def _block_matches_torch(m, block: str, make_reference, cases, hint=BLOCK_HINT) -> None:
    """`block(c_in, size, stride)` (size: BasicBlock's c_out, Bottleneck's width) equals its
    torch reference with the same random parameters, case by case."""
    for c_in, size, stride in cases:
        reference = make_reference(c_in, size, stride)
        compare_with_torch(
            m,
            getattr(m, block)(c_in, size, stride, rng=0),
            reference,
            random_params(reference, 10 * c_in + size),
            normal(c_in + stride, (2, c_in, 6, 5)),
            f"{block}({c_in}, {size}, stride={stride})",
            hint,
        )


@check("cnn_blocks", "oracle")
def basic_block_matches_torch(m):
    """BasicBlock with an identity and with a projection shortcut equals the torch block."""
    _block_matches_torch(m, "BasicBlock", torch_basic_block, ((3, 3, 1), (3, 5, 2), (2, 4, 1)))


@check("cnn_blocks", "oracle")
def bottleneck_matches_torch(m):
    """Bottleneck (stride on the 3×3, projection when needed) equals the torch block."""
    _block_matches_torch(
        m,
        "Bottleneck",
        torch_bottleneck,
        ((8, 2, 1), (4, 2, 2), (8, 3, 1)),
        BLOCK_HINT + " The stride sits on the 3×3 conv (ResNet v1.5).",
    )


@check("cnn_blocks", "invariant")
def a_block_with_zeroed_last_gamma_is_relu(m):
    """With the last BN's γ = β = 0 a block with an identity shortcut is ReLU, forward and back."""
    x, dout = normal(5, (2, 8, 4, 4)), normal(6, (2, 8, 4, 4))
    for label, block, last in (
        ("BasicBlock(8, 8)", m.BasicBlock(8, 8, rng=1), 4),
        ("Bottleneck(8, 2)", m.Bottleneck(8, 2, rng=1), 7),
    ):
        shapes = run_probe(m, "phase7.load_params", block, [])
        arrays = [normal(i, tuple(s), scale=0.5) for i, s in enumerate(shapes)]
        if len(arrays) <= last + 1:
            raise CheckFailed(
                f"{label}.params() holds {len(arrays)} arrays; see the docstring for the order."
            )
        arrays[last] = np.zeros_like(arrays[last])  # γ of the last BatchNorm
        arrays[last + 1] = np.zeros_like(arrays[last + 1])  # and its β
        load_params(block, arrays)
        assert_close(
            block.forward(x), np.maximum(x, 0), f"{label} with the last γ = 0", hint=BLOCK_HINT
        )
        assert_close(
            block.backward(dout),
            dout * (x > 0),
            f"{label} backward with the last γ = 0",
            hint=BACKWARD_HINT,
        )


@check("cnn_blocks", "gradient")
def basic_block_backward_agrees_with_finite_differences(m):
    """A projection BasicBlock's dx agrees with central differences of its training forward."""
    block = m.BasicBlock(2, 3, 2, rng=3)

    def vjp(inputs, v):
        block.forward(inputs["x"])
        return {"x": block.backward(v)}

    check_gradients(
        lambda inputs: block.forward(inputs["x"]),
        vjp,
        {"x": normal(7, (2, 2, 5, 4))},
        what="BasicBlock.backward",
        passes=4,
        hint=BACKWARD_HINT,
    )


def _params(m, block) -> list[np.ndarray]:
    return [np.asarray(p) for p in run_probe(m, "phase7.call_with_inputs", block, "params", [])[0]]


@check("cnn_blocks", "invariant")
def blocks_draw_every_conv_from_one_seeded_generator(m):
    """rng=seed makes a block reproducible; two convs of the same shape get different weights."""
    hint = (
        "Normalise rng once (np.random.default_rng(rng)) and pass that Generator to every "
        "Conv2d: an int seed passed on would give every same-shaped conv the same weights."
    )
    for name, args, first, second in (("BasicBlock", (4, 4), 0, 3), ("Bottleneck", (4, 4), 6, 9)):
        params = seeded(
            lambda seed, name=name, args=args: _params(m, getattr(m, name)(*args, rng=seed)),
            f"{name}{args} params",
            hint,
        )
        if len(params) <= second:
            raise CheckFailed(
                f"{name}{args}.params() holds {len(params)} arrays; see the "
                "docstring for the order."
            )
        if params[first].shape == params[second].shape and np.array_equal(
            params[first], params[second]
        ):
            raise CheckFailed(f"two convs of {name}{args} have identical weights.", hint)


def _block_backward(m, dtype):
    block = m.BasicBlock(2, 3, 2, rng=0, dtype=dtype.name)
    block.forward(normal(1, (2, 2, 5, 5), dtype))
    return block.backward, [normal(2, (2, 3, 3, 3), dtype)], {}


@fingerprint("cnn_blocks")
def block_outputs(m):
    outputs = {}
    for label, make, builder, args in (
        ("projection", m.BasicBlock, torch_basic_block, (3, 4, 2)),
        ("identity", m.BasicBlock, torch_basic_block, (4, 4, 1)),
        ("widen", m.BasicBlock, torch_basic_block, (2, 4, 1)),
        ("bottleneck", m.Bottleneck, torch_bottleneck, (4, 2, 2)),
        ("bottleneck_same", m.Bottleneck, torch_bottleneck, (8, 2, 1)),
    ):
        x = normal(3, (2, args[0], 6, 6))
        outputs.update(dict.fromkeys((f"{label}_y", f"{label}_dx", f"{label}_grads"), MISSING))
        try:
            block = make(*args, rng=0)
            load_params(block, random_params(builder(*args), 5))
            y = as_array(block.forward(x), "y")
            outputs[f"{label}_y"] = y
            outputs[f"{label}_dx"] = attempt(block.backward, normal(4, y.shape))
            grads = run_probe(m, "phase7.call_with_inputs", block, "grads", [])[0]
            outputs[f"{label}_grads"] = np.concatenate([np.ravel(g) for g in grads])
        except (StudentError, CheckFailed):
            pass
    return outputs


globals().update(
    contract_checks(
        __name__,
        "cnn_blocks",
        [
            Numeric(
                "BasicBlock.forward",
                lambda m, dtype: (
                    m.BasicBlock(2, 3, 2, rng=0, dtype=dtype.name).forward,
                    [normal(1, (2, 2, 5, 5), dtype)],
                    {},
                ),
            ),
            Numeric("BasicBlock.backward", _block_backward),
            Numeric(
                "Bottleneck.forward",
                lambda m, dtype: (
                    m.Bottleneck(4, 2, 1, rng=0, dtype=dtype.name).forward,
                    [normal(1, (2, 4, 4, 4), dtype)],
                    {},
                ),
            ),
        ],
    )
)
