"""Bootstrap intervals and the verdict rule the ablation document uses."""
import math

import numpy as np
import pytest

from squeeze_studio.eval.intervals import difference, mean_interval, verdict


def test_a_mean_interval_contains_the_mean_and_narrows_with_more_examples():
    rng = np.random.default_rng(1)
    small, large = rng.normal(10, 2, 32), rng.normal(10, 2, 512)
    (low_s, high_s), (low_l, high_l) = mean_interval(small), mean_interval(large)
    assert low_s < small.mean() < high_s and low_l < large.mean() < high_l
    assert high_l - low_l < (high_s - low_s) / 2


def test_nans_are_left_out_and_an_all_nan_metric_has_no_interval():
    assert mean_interval(np.array([math.nan, math.nan])) is None
    low, high = mean_interval(np.array([1.0, math.nan, 1.0]))
    assert low == high == 1.0


def test_paired_difference_cancels_shared_difficulty():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(0, 5, 128)  # large per-example spread, shared by both settings
    a, b = difficulty + 0.3, difficulty
    result = difference(a, b)
    assert result["delta"] == pytest.approx(0.3)
    assert result["ci95"][0] > 0  # paired: the constant 0.3 dB shift is measured despite the spread
    assert verdict(result["ci95"]) == "higher" and verdict(result["ci95"], paper_sign=-1) == "disagrees with the paper"


def test_differences_within_noise_are_no_difference_measured():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 128), rng.normal(0, 1, 128)
    result = difference(a, b)
    assert result["ci95"][0] < 0 < result["ci95"][1]
    assert verdict(result["ci95"], paper_sign=1) == "no difference measured"


def test_paired_difference_counts_only_examples_where_both_count():
    a = np.array([1.0, math.nan, 1.0, 0.0])
    b = np.array([0.0, 1.0, math.nan, 0.0])
    assert difference(a, b)["delta"] == pytest.approx(0.5)  # examples 0 and 3
    with pytest.raises(ValueError, match="same examples"):
        difference(a, b[:3])


def test_the_intervals_are_95_percent_wide():
    """Against the known answer: the mean of n = 512 draws of N(10, 2) has a 95 % interval 2 * 1.96 * 2 / sqrt(512)
    wide, and the paired difference of two N(0, 1) samples one 2 * 1.96 * sqrt(2) / sqrt(512) wide (within 10 %:
    the sample's own spread and the bootstrap's draws). A 50 % or a 90 % interval is far outside."""
    rng = np.random.default_rng(4)
    values = rng.normal(10, 2, 512)
    low, high = mean_interval(values)
    assert high - low == pytest.approx(2 * 1.96 * 2 / math.sqrt(512), rel=0.1)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.05)
    a, b = rng.normal(0, 1, 512), rng.normal(0, 1, 512)
    low, high = difference(a, b)["ci95"]
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(2) / math.sqrt(512), rel=0.1)


def test_the_mean_interval_covers_the_true_mean_95_times_in_100():
    """Over 400 samples of 100 draws of N(0, 1), the interval holds the true mean 0 in about 95 % of them (binomial
    spread about 1.1 %; a 90 % interval covers about 89 %, a 50 % one about half)."""
    rng = np.random.default_rng(10)
    covered = 0
    for _ in range(400):
        low, high = mean_interval(rng.normal(0, 1, 100))
        covered += low <= 0 <= high
    assert 0.92 <= covered / 400 <= 0.98
