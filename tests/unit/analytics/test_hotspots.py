"""The self-exciting model: its neighbours, its fit against known parameters, its forecast,
and the fit on real police open data (the shipped extracts)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analytics.hotspots import (
    exposure,
    fit,
    fit_open_data,
    forecast,
    lag_kernel,
    neighbours,
)
from analytics.opendata import OpenDataError, read_street_files
from tests.unit.analytics.crimes import HANTS, WY_2016, WY_2017


def grid(side: int, step: float) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(side) * step, np.arange(side) * step)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def simulate(
    mu: np.ndarray, theta_r: float, theta_n: float, beta: float, periods: int, nb, seed: int
) -> np.ndarray:
    """Counts drawn from the model itself, period after period."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(mu), periods))
    r = np.zeros(len(mu))
    for t in range(periods):
        lam = mu + theta_r * r + theta_n * nb.spread(r)
        counts[:, t] = rng.poisson(lam)
        r = beta * r + (1 - beta) * counts[:, t]
    return counts


def test_neighbours_within_three_bandwidths_weights_normalised() -> None:
    xy = grid(6, 100.0)
    nb = neighbours(xy, 100.0)
    d = np.hypot(*(xy[nb.src] - xy[nb.dst]).T)
    assert (d <= 300.0 + 1e-9).all() and (nb.src != nb.dst).all()
    # Every pair within the cutoff is there, both ways.
    full = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    assert len(nb.src) == int(((full <= 300.0) & (full > 0)).sum())
    assert np.allclose(np.bincount(nb.src, weights=nb.out), 1.0)
    assert np.allclose(np.bincount(nb.dst, weights=nb.into), 1.0)
    # Spreading keeps the total: an event's near-repeat effect is shared, not copied.
    values = np.arange(36, dtype=float)
    assert np.isclose(nb.spread(values).sum(), values.sum())
    lonely = neighbours(np.array([[0.0, 0.0], [10_000.0, 0.0]]), 100.0)
    assert len(lonely.src) == 0 and (lonely.mean_around(np.array([1.0, 2.0])) == [1, 2]).all()


def test_the_lag_kernel_sums_to_one_and_the_exposure_follows_it() -> None:
    assert np.isclose(lag_kernel(0.7, np.arange(1, 400)).sum(), 1.0)
    assert lag_kernel(0.7, 0) == 0.0
    counts = np.array([[2.0, 0.0, 1.0]])
    r = exposure(counts, 0.5)
    # R[t] = sum_{s<t} g(t - s) N[s]: t=3 -> g(3)*2 + g(1)*1 = 0.125*2 + 0.5*1
    assert np.allclose(r[0], [0.0, 1.0, 0.5, 0.75])


def test_em_recovers_the_parameters_of_counts_drawn_from_the_model() -> None:
    xy = grid(12, 300.0)
    nb = neighbours(xy, 300.0)
    rng = np.random.default_rng(7)
    mu = rng.gamma(2.0, 0.5, size=len(xy))
    counts = simulate(mu, 0.35, 0.25, 0.6, 60, nb, seed=11)
    model = fit(counts, nb, kappa=0.0)
    assert model.converged
    assert model.theta_repeat == pytest.approx(0.35, abs=0.08)
    assert model.theta_near == pytest.approx(0.25, abs=0.1)
    assert model.beta == pytest.approx(0.6, abs=0.15)
    assert np.corrcoef(model.mu, mu)[0, 1] > 0.8
    # No triggering in the data: none found.
    calm = simulate(mu, 0.0, 0.0, 0.5, 60, nb, seed=12)
    still = fit(calm, nb, kappa=0.0)
    assert still.theta_repeat + still.theta_near < 0.06


def test_one_period_is_its_smoothed_background_and_nothing_else() -> None:
    xy = grid(5, 200.0)
    nb = neighbours(xy, 200.0)
    counts = np.zeros((25, 1))
    counts[12, 0] = 10
    raw = fit(counts, nb, kappa=0.0)
    assert raw.theta_repeat == raw.theta_near == 0.0
    assert np.allclose(forecast(raw, counts, nb).expected, np.maximum(counts[:, 0], 1e-9))
    smooth = forecast(fit(counts, nb, kappa=2.0), counts, nb).expected
    # Pulled toward the neighbours: the peak lower, its neighbours above zero.
    assert smooth[12] < 10 and smooth[11] > smooth[0] > 0
    assert int(np.argmax(smooth)) == 12


def test_the_forecast_fades_with_the_horizon_toward_the_background() -> None:
    xy = grid(8, 300.0)
    nb = neighbours(xy, 300.0)
    mu = np.full(64, 0.5)
    counts = simulate(mu, 0.5, 0.2, 0.5, 30, nb, seed=3)
    counts[10, -1] += 20  # a burst in the last period
    model = fit(counts, nb, kappa=0.0)
    one, six = forecast(model, counts, nb, 1), forecast(model, counts, nb, 6)
    assert np.allclose(one.expected, one.background + one.repeat + one.near)
    assert one.expected[10] > six.expected[10] > model.mu[10]
    with pytest.raises(ValueError):
        forecast(model, counts, nb, 0)


def test_fit_on_real_open_data_scores_every_lsoa_seen() -> None:
    data = read_street_files(HANTS[:3])
    model = fit_open_data(data)
    assert model.months == ["2017-03", "2017-04", "2017-05"]
    assert set(model.units.codes) == {c.lsoa_code for c in data.crimes}
    ranked = model.ranked()
    assert len(ranked) == len(model.units.codes)
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(ranked))
    assert all(score > 0 for _, score in ranked)
    # The model's expected total is of the order of a month's victim-based crime.
    per_month = model.counts.sum() / 3
    assert 0.5 * per_month < sum(s for _, s in ranked) < 1.5 * per_month
    cells = fit_open_data(data, unit="cell", cell_m=250.0, kappa=1.0, bandwidth_m=250.0)
    assert all(code.startswith("C") for code in cells.units.codes)
    assert cells.counts.sum() == model.counts.sum()


def test_a_history_with_a_missing_month_is_refused() -> None:
    data = read_street_files([WY_2016, WY_2017])
    with pytest.raises(OpenDataError, match=r"missing 2016-08, .*2017-06"):
        fit_open_data(data)
