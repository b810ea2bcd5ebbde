"""The Model Confidence Set (Hansen, Lunde & Nason 2011) holds its size where models cannot be told apart and
drops a model that is clearly worse."""

import numpy as np

from pricernn.evaluation.selection import block_length, bootstrap_means, model_confidence_set


def test_the_set_keeps_every_model_of_equal_skill_at_about_the_nominal_rate():
    """300 samples of 5 models with exchangeable losses (squared errors of the same noise, correlated with one
    another and clustered in time): the set leaves one out in about 10 % of them, not more."""
    rng = np.random.default_rng(0)
    excluded = []
    for trial in range(300):
        common = rng.normal(size=(400, 1))
        volatility = np.exp(np.convolve(rng.normal(0, 0.3, 409), np.ones(10) / 10, mode="valid"))[:, None]
        losses = (volatility * (0.7 * common + 0.7 * rng.normal(size=(400, 5)))) ** 2
        excluded.append(len(model_confidence_set(losses, level=0.1, resamples=300, seed=trial).kept) < 5)
    assert 0.03 <= np.mean(excluded) <= 0.15, np.mean(excluded)


def test_a_clearly_worse_model_is_removed_first_and_the_others_stay():
    rng = np.random.default_rng(1)
    losses = rng.normal(size=(500, 4)) ** 2
    losses[:, 2] += 0.5  # half again the others' mean loss
    found = model_confidence_set(losses, level=0.1)
    assert found.kept == (0, 1, 3) and found.removed[0] == 2 and found.pvalues[2] < 0.01
    assert max(found.pvalues) == 1.0 and all(p >= 0.1 for k, p in enumerate(found.pvalues) if k != 2)


def test_block_means_are_the_means_of_the_resampled_dates():
    losses = np.arange(20.0).reshape(10, 2)
    means = bootstrap_means(losses, resamples=3, block=4, seed=5)
    starts = np.random.default_rng(5).integers(0, 7, size=(3, 3))  # the same draws: 3 blocks of 4, the last cut to 2
    index = np.hstack([(starts[:, :2, None] + np.arange(4)).reshape(3, 8), starts[:, 2:] + np.arange(2)])
    np.testing.assert_allclose(means, losses[index].mean(axis=1))
    assert block_length(750) == 10 and block_length(750, horizon=20) == 20
