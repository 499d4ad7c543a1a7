"""label_counts equals np.bincount over the values 0..n-1, whatever the dtype and range."""
import numpy as np
import pytest

from harness.metrics.histogram import byte_pair_counts, label_counts


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
@pytest.mark.parametrize("top", [0, 3, 255])
@pytest.mark.parametrize("n", [1, 2, 50, 256, 300])
def test_equals_bincount(dtype, top, n):
    labels = np.random.default_rng(top + n).integers(0, top + 1, (37, 53)).astype(dtype)
    expected = np.bincount(labels.ravel().astype(np.int64), minlength=max(n, top + 1))[:n]
    np.testing.assert_array_equal(label_counts(labels, n), expected)


@pytest.mark.parametrize("low, high", [(-5, 300), (0, 70000), (60000, 65535)])
def test_values_outside_the_range_are_not_counted(low, high):
    # int32 maps with negative values or values beyond 16 bits must not wrap into a bin
    labels = np.random.default_rng(1).integers(low, high + 1, (40, 60)).astype(np.int32)
    labels[0, :3] = [0, 1, 99]
    kept = labels[(labels >= 0) & (labels < 100)]
    np.testing.assert_array_equal(label_counts(labels, 100), np.bincount(kept, minlength=100))


def test_one_dimensional_and_empty():
    np.testing.assert_array_equal(label_counts(np.array([2, 2, 0], np.uint8), 4), [1, 0, 2, 0])
    np.testing.assert_array_equal(label_counts(np.zeros((0, 5), np.uint16), 3), [0, 0, 0])


@pytest.mark.parametrize("shape", [(37, 53), (1, 5), (0, 4)])
def test_byte_pair_counts_equals_bincount_of_pairs(shape):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, shape).astype(np.int32)
    b = rng.integers(0, 256, shape).astype(np.uint8)
    expected = np.bincount((a.ravel() * 256 + b.ravel()).astype(np.int64), minlength=1 << 16).reshape(256, 256)
    np.testing.assert_array_equal(byte_pair_counts(a, b), expected)
