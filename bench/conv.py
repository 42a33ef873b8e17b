"""Benchmark: the phase-7 im2col Conv2d, forward + backward, against a direct loop and torch.

Three implementations of one ResNet-sized layer (64 → 64 channels, 3×3, stride 1, padding 1,
a batch of 8 images of 28×28, float32), each computing the output, dx, dW and db:
- im2col: the reference solutions/phase7_cnn.Conv2d (im2col, one matmul, col2im);
- direct: a loop over the Ho·Wo output positions, one tensordot per position (forward) and
  two per position (backward), the textbook definition without the unfolding;
- torch: torch.nn.functional.conv2d with autograd (oneDNN's kernels).
All agree (checked below, max abs difference printed). One thread everywhere, so the ratios
compare algorithms, not thread pools. Repetitions alternate between the implementations so
that drift in the machine's speed hits all alike; the ratios of the medians are reported.

Reported, with no goal attached: how much the unfolding gains over the loop, and how far
NumPy stays from torch's native kernels (the capstone's training time follows from it).

    python bench/conv.py [--reps 5] [--batch 8] [--size 28] [--channels 64]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy and torch load their thread pools

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solutions import phase7_cnn as cnn  # noqa: E402


def im2col_conv(x, weight, bias, dout):
    layer = cnn.Conv2d(x.shape[1], weight.shape[0], 3, padding=1, dtype=np.float32)
    layer.weight, layer.bias = weight, bias
    y = layer.forward(x)
    dx = layer.backward(dout)
    return y, dx, layer.grad_weight, layer.grad_bias


def direct_conv(x, weight, bias, dout):
    """The definition, position by position: out[:, :, p, q] = Σ W·window(p, q) + b."""
    N, _, H, W = x.shape
    k = weight.shape[-1]
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.empty((N, weight.shape[0], H, W), dtype=x.dtype)
    for p in range(H):
        for q in range(W):
            window = x_pad[:, :, p : p + k, q : q + k]  # (N, C, k, k)
            y[:, :, p, q] = np.tensordot(window, weight, axes=([1, 2, 3], [1, 2, 3])) + bias
    dx_pad = np.zeros_like(x_pad)
    dweight = np.zeros_like(weight)
    for p in range(H):
        for q in range(W):
            d = dout[:, :, p, q]  # (N, O)
            dweight += np.tensordot(d, x_pad[:, :, p : p + k, q : q + k], axes=([0], [0]))
            dx_pad[:, :, p : p + k, q : q + k] += np.tensordot(d, weight, axes=([1], [0]))
    return y, dx_pad[:, :, 1:-1, 1:-1], dweight, dout.sum(axis=(0, 2, 3))


def torch_conv(x, weight, bias, dout):
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    bt = torch.from_numpy(bias).requires_grad_()
    y = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
    y.backward(torch.from_numpy(dout))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


METHODS = {"im2col": im2col_conv, "direct": direct_conv, "torch": torch_conv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    C = args.channels
    x = rng.standard_normal((args.batch, C, args.size, args.size), dtype=np.float32)
    weight = (rng.standard_normal((C, C, 3, 3), dtype=np.float32) / np.sqrt(9 * C)).astype(
        np.float32
    )
    bias = rng.standard_normal(C, dtype=np.float32)
    dout = rng.standard_normal(x.shape, dtype=np.float32)

    results = {name: method(x, weight, bias, dout) for name, method in METHODS.items()}
    for name in ("im2col", "direct"):
        error = max(
            float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
            for a, b in zip(results[name], results["torch"], strict=True)
        )
        print(f"{name} vs torch: max relative difference {error:.2g} (y, dx, dW, db)")
        if error > 1e-4:
            raise SystemExit(f"{name} disagrees with torch: the comparison would be meaningless")

    times = {name: [] for name in METHODS}
    for _ in range(args.reps):
        for name, method in METHODS.items():
            start = time.perf_counter()
            method(x, weight, bias, dout)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    forward_flops = 2 * args.batch * C * C * 9 * args.size**2  # backward costs twice forward
    print(
        f"\nConv2d {C}→{C}, 3×3, padding 1, batch {args.batch} of {args.size}×{args.size}, "
        f"float32, forward + backward, one thread, median of {args.reps}:"
    )
    for name, seconds in median.items():
        rate = 3 * forward_flops / seconds / 1e9
        print(f"  {name:7s} {seconds * 1e3:9.1f} ms   ({rate:5.1f} GFLOP/s)")
    print(
        f"\nim2col is {median['direct'] / median['im2col']:.1f}× faster than the direct loop "
        f"and {median['im2col'] / median['torch']:.1f}× slower than torch."
    )


if __name__ == "__main__":
    main()
