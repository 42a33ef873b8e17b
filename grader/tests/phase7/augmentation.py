"""7.9 Seeded augmentation: every crop is a zero-filled shift of its image by the documented
offsets, every flip a left–right mirror drawn with probability p, reproducible from the seed."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks
from grader.checks.oracle import as_array, assert_close
from grader.session import run_probe
from grader.tests.phase7._helpers import attempt, normal, unchanged

CROP_HINT = (
    "offsets = rng.integers(0, 2·padding + 1, size=(N, 2)), one (dy, dx) row per image, and "
    "out[n] = zero-padded[n, :, dy:dy + H, dx:dx + W]."
)
FLIP_HINT = "flip = rng.random(N) < p, in one call; a flip reverses the last axis (W) only."


def _images(seed, shape=(6, 2, 5, 7), dtype=np.float64):
    return normal(seed, shape, dtype) + 3.0  # no zeros: a zero in the output is padding


def _shift(image, dy, dx, padding):
    """image (C, H, W) moved by (padding − dy, padding − dx), zeros filling in."""
    C, H, W = image.shape
    padded = np.zeros((C, H + 2 * padding, W + 2 * padding), image.dtype)
    padded[:, padding : padding + H, padding : padding + W] = image
    return padded[:, dy : dy + H, dx : dx + W]


@check("cnn_augmentation", "oracle")
def random_crop_uses_the_documented_offsets(m):
    """random_crop(images, p, seed) shifts image n by the n-th documented offset, zeros filling."""
    for padding, seed, dtype in ((2, 0, np.float64), (1, 5, np.float32), (3, 7, np.float64)):
        images = _images(seed, dtype=dtype)
        offsets = np.random.default_rng(seed).integers(0, 2 * padding + 1, size=(len(images), 2))
        expected = np.stack(
            [_shift(img, dy, dx, padding) for img, (dy, dx) in zip(images, offsets, strict=True)]
        )
        assert_close(
            m.random_crop(images, padding, seed),
            expected,
            f"random_crop(padding={padding}, rng={seed}) on {np.dtype(dtype).name}",
            hint=CROP_HINT,
        )


@check("cnn_augmentation", "invariant")
def random_crop_covers_every_offset_and_keeps_its_input(m):
    """Over 400 images every one of the (2p+1)² shifts occurs; padding 0 is the identity."""
    images = _images(1, (400, 1, 4, 4))
    crops = as_array(m.random_crop(images, 1, 3), "random_crop output")
    seen = set()
    for image, crop in zip(images, crops, strict=True):
        found = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if np.array_equal(_shift(image, dy, dx, 1), crop)
        ]
        if not found:
            raise CheckFailed(
                "an output of random_crop is not a zero-filled shift of its image "
                "by at most `padding` pixels.",
                CROP_HINT,
            )
        seen.add(found[0])
    if len(seen) != 9:
        raise CheckFailed(
            f"with padding 1 only {len(seen)} of the 9 shifts ever occurred in 400 images.",
            CROP_HINT,
        )
    x = _images(2)
    assert_close(m.random_crop(x, 0, 0), x, "random_crop with padding 0")
    _, (after, _, _) = run_probe(m, "phase7.call_with_inputs", m, "random_crop", [x, 2, 0])
    unchanged(x, after, "random_crop's images")


@check("cnn_augmentation", "oracle")
def random_flip_uses_the_documented_draw(m):
    """random_horizontal_flip mirrors exactly the images with rng.random(N) < p."""
    for p, seed, dtype in ((0.5, 0, np.float64), (0.2, 4, np.float32), (0.9, 9, np.float64)):
        images = _images(seed, (40, 2, 3, 4), dtype)
        flip = np.random.default_rng(seed).random(len(images)) < p
        expected = np.where(flip[:, None, None, None], images[..., ::-1], images)
        assert_close(
            m.random_horizontal_flip(images, p, seed),
            expected,
            f"random_horizontal_flip(p={p}, rng={seed}) on {np.dtype(dtype).name}",
            hint=FLIP_HINT,
        )


@check("cnn_augmentation", "invariant")
def random_flip_extremes_and_rates(m):
    """p = 0 never flips, p = 1 always does, p = 0.25 flips about a quarter; input unchanged."""
    x = _images(3, (400, 1, 2, 3))
    assert_close(m.random_horizontal_flip(x, 0.0, 1), x, "random_horizontal_flip with p = 0")
    assert_close(
        m.random_horizontal_flip(x, 1.0, 1),
        x[..., ::-1],
        "random_horizontal_flip with p = 1",
        hint=FLIP_HINT,
    )
    out = as_array(m.random_horizontal_flip(x, 0.25, 2), "random_horizontal_flip output")
    flipped = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    if not np.all(flipped | np.all(out == x, axis=(1, 2, 3))):
        raise CheckFailed("an output is neither the image nor its left–right mirror.", FLIP_HINT)
    if not 0.18 <= flipped.mean() <= 0.32:
        raise CheckFailed(
            f"with p = 0.25, {flipped.mean():.0%} of 400 images were flipped.", FLIP_HINT
        )
    _, (after, _, _) = run_probe(
        m, "phase7.call_with_inputs", m, "random_horizontal_flip", [x, 0.5, 0]
    )
    unchanged(x, after, "random_horizontal_flip's images")


@fingerprint("cnn_augmentation")
def augmentation_outputs(m):
    x = _images(11, (8, 1, 4, 5))
    return {
        "crop": attempt(m.random_crop, x, 2, 0),
        "crop_1": attempt(m.random_crop, x, 1, 3),
        "flip": attempt(m.random_horizontal_flip, x, 0.5, 0),
        "flip_low": attempt(m.random_horizontal_flip, x, 0.2, 1),
    }


globals().update(
    contract_checks(
        __name__,
        "cnn_augmentation",
        [
            Numeric(
                "random_crop", lambda m, dtype: (m.random_crop, [_images(1, dtype=dtype), 2, 0], {})
            ),
            Numeric(
                "random_horizontal_flip",
                lambda m, dtype: (m.random_horizontal_flip, [_images(2, dtype=dtype), 0.5, 0], {}),
            ),
        ],
    )
)
