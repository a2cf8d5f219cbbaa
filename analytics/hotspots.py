"""Predictive patrol priorities: a self-exciting model of repeat and near-repeat
victimisation over areas, fitted by expectation-maximisation.

The model is the discrete form of the self-exciting point process of Mohler et al.
(2011, "Self-exciting point process modeling of crime", JASA 106:100-108) that Mohler et
al. (2015, "Randomized controlled field trials of predictive policing", JASA
110:1399-1411) ran on square cells and whole days. Here time is counted in periods
(months for police open data, days or hours for the engine's own calls) and space in
units (LSOAs, or square cells). The expected count of unit ``u`` in period ``t`` is

    lambda[u, t] = mu[u]                                   (background: the usual level)
                 + theta_repeat * sum_s g(t - s) N[u, s]     (repeats: the same area)
                 + theta_near * sum_v w[v, u] sum_s g(t - s) N[v, s]   (near repeats)

- ``N[u, s]``: events of unit ``u`` in an earlier period ``s``;
- ``g(d) = (1 - beta) * beta ** (d - 1)`` for ``d >= 1``: how the effect of an event
  fades, one period after another (sums to 1, so ``theta`` is the expected number of
  events one event brings, in its own area or around it);
- ``w[v, u]``: how a unit's near-repeat effect spreads over the units around it, a
  Gaussian of the distance between their centres (``bandwidth_m``) up to three
  bandwidths, each source's weights summing to 1 (the unit itself is left out: that is
  the repeat term).

EM (the "stochastic declustering" of Mohler 2011, in expectation): each period's events
are shared between background, repeat and near-repeat by the terms' shares of
``lambda``; ``mu`` is then each unit's background events per period, with a gamma prior
centred on its neighbours' background of strength ``kappa`` periods (so a unit seen
once is pulled toward its area's level); ``theta_repeat`` and ``theta_near`` are the
triggered events over the events that had time to trigger them (edge-corrected), and
``beta`` is profiled over a grid (the likelihood's best, among fits where an event
brings fewer than one more: ``theta_repeat + theta_near < 1``). ``kappa`` and
``bandwidth_m`` are chosen (``choose_smoothing``) by Poisson thinning: the events are
split at random into two halves with the same intensity, the model is fitted on one
and scored by the Poisson likelihood of the other.

What it cannot use, and what follows (docs/analytics.md): with monthly data, events of
the same month cannot be ordered, so a repeat within the same month is background here,
not triggering; the fitted ``theta`` is the month-to-month persistence beyond each
area's usual level, not the days-long near-repeat of burglary. With one month of
history there is nothing to fit triggering on: the model is then its smoothed
background. The forecast for ``h`` periods ahead is the model's expected count
(``forecast``), events of the months in between taken at their expectation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.opendata import (
    VICTIM_BASED,
    OpenDataError,
    StreetCrime,
    StreetData,
    month_index,
    month_name,
)

EARTH_RADIUS_M = 6_371_008.8
BETA_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MU_FLOOR = 1e-9
PROFILE_ITERATIONS = 80  # EM steps at each beta of the profile


# ---- space ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Longitude and latitude to metres, east and north, about one latitude (an
    equirectangular projection: within a police force, off by well under 1 %)."""

    lat0: float

    @classmethod
    def about(cls, lats: Sequence[float] | np.ndarray) -> Projection:
        values = np.asarray(lats, dtype=float)
        return cls(float(values.mean()) if len(values) else 52.5)

    def xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = EARTH_RADIUS_M * math.pi / 180.0
        return (
            np.asarray(lon, dtype=float) * k * math.cos(math.radians(self.lat0)),
            np.asarray(lat, dtype=float) * k,
        )

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = EARTH_RADIUS_M * math.pi / 180.0
        return np.asarray(x) / (k * math.cos(math.radians(self.lat0))), np.asarray(y) / k


@dataclass(frozen=True)
class Neighbours:
    """The units around each unit: pairs ``src -> dst`` within three bandwidths, with
    Gaussian weights normalised two ways: over each source's destinations (``out``: how
    an event's near-repeat effect spreads) and over each destination's sources (``into``:
    a weighted mean of the neighbours)."""

    size: int
    src: np.ndarray
    dst: np.ndarray
    out: np.ndarray
    into: np.ndarray
    bandwidth_m: float

    @property
    def has_out(self) -> np.ndarray:
        """Units whose near-repeat effect reaches at least one other unit."""
        found = np.zeros(self.size, dtype=bool)
        found[self.src] = True
        return found

    @property
    def has_into(self) -> np.ndarray:
        found = np.zeros(self.size, dtype=bool)
        found[self.dst] = True
        return found

    def spread(self, values: np.ndarray) -> np.ndarray:
        """``sum_v w[v, u] values[v]`` for every ``u`` (``values``: (U,) or (U, K))."""
        if values.ndim == 1:
            return np.bincount(self.dst, weights=self.out * values[self.src], minlength=self.size)
        return np.stack([self.spread(values[:, k]) for k in range(values.shape[1])], axis=1)

    def mean_around(self, values: np.ndarray) -> np.ndarray:
        """Each unit's weighted mean of its neighbours' values (its own where it has
        none)."""
        around = np.bincount(self.dst, weights=self.into * values[self.src], minlength=self.size)
        return np.where(self.has_into, around, values)


def neighbours(xy: np.ndarray, bandwidth_m: float) -> Neighbours:
    """The pairs of units whose centres are within three bandwidths (``xy``: (U, 2)
    metres)."""
    if bandwidth_m <= 0:
        raise ValueError("bandwidth_m must be positive")
    size = len(xy)
    cutoff = 3.0 * bandwidth_m
    cells = np.floor(xy / cutoff).astype(np.int64) if size else np.zeros((0, 2), np.int64)
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, (cx, cy) in enumerate(cells.tolist()):
        buckets.setdefault((cx, cy), []).append(i)
    members = {key: np.asarray(value, dtype=np.int64) for key, value in buckets.items()}
    srcs: list[np.ndarray] = []
    dsts: list[np.ndarray] = []
    dists: list[np.ndarray] = []
    for (cx, cy), here in members.items():
        around = [
            members[(cx + dx, cy + dy)]
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
            if (cx + dx, cy + dy) in members
        ]
        there = np.concatenate(around)
        d = np.hypot(
            xy[here, 0][:, None] - xy[there, 0][None, :],
            xy[here, 1][:, None] - xy[there, 1][None, :],
        )
        rows, cols = np.nonzero((d <= cutoff) & (here[:, None] != there[None, :]))
        srcs.append(here[rows])
        dsts.append(there[cols])
        dists.append(d[rows, cols])
    src = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
    dst = np.concatenate(dsts) if dsts else np.zeros(0, np.int64)
    dist = np.concatenate(dists) if dists else np.zeros(0)
    kernel = np.exp(-0.5 * (dist / bandwidth_m) ** 2)
    out_total = np.bincount(src, weights=kernel, minlength=size)
    into_total = np.bincount(dst, weights=kernel, minlength=size)
    return Neighbours(
        size=size,
        src=src,
        dst=dst,
        out=kernel / out_total[src] if len(src) else kernel,
        into=kernel / into_total[dst] if len(dst) else kernel,
        bandwidth_m=bandwidth_m,
    )


# ---- the model ------------------------------------------------------------------------


def lag_kernel(beta: float, lag: int | np.ndarray) -> np.ndarray:
    """``g(d) = (1 - beta) beta^(d-1)``, the share of an event's effect ``d`` periods on."""
    d = np.asarray(lag, dtype=float)
    return np.where(d >= 1, (1.0 - beta) * beta ** np.maximum(d - 1.0, 0.0), 0.0)


def exposure(counts: np.ndarray, beta: float) -> np.ndarray:
    """``R[u, t] = sum_{s < t} g(t - s) N[u, s]`` for ``t = 0 .. K`` (one column more
    than ``counts``: the last is the next period's)."""
    units, periods = counts.shape
    out = np.zeros((units, periods + 1))
    for t in range(1, periods + 1):
        out[:, t] = beta * out[:, t - 1] + (1.0 - beta) * counts[:, t - 1]
    return out


@dataclass(frozen=True)
class Fit:
    """A fitted model: each unit's background per period and the triggering terms."""

    mu: np.ndarray
    theta_repeat: float
    theta_near: float
    beta: float
    kappa: float
    bandwidth_m: float
    periods: int
    iterations: int
    log_likelihood: float
    converged: bool

    def intensity(self, counts: np.ndarray, nb: Neighbours) -> np.ndarray:
        """``lambda`` for the fitted periods and the next: (U, K + 1)."""
        r = exposure(counts, self.beta)
        return self.mu[:, None] + self.theta_repeat * r + self.theta_near * nb.spread(r)

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "background_per_period": round(float(self.mu.sum()), 3),
            "theta_repeat": round(self.theta_repeat, 4),
            "theta_near": round(self.theta_near, 4),
            "beta": round(self.beta, 3),
            "kappa": self.kappa,
            "bandwidth_m": self.bandwidth_m,
            "periods": self.periods,
            "iterations": self.iterations,
            "converged": self.converged,
        }


def _opportunity(weights_by_period: np.ndarray, beta: float) -> float:
    """Events that had time to trigger within the window: ``sum_s n_s (1 - beta^(K-1-s))``."""
    periods = len(weights_by_period)
    left = periods - 1 - np.arange(periods)
    return float((weights_by_period * (1.0 - beta**left)).sum())


def _em(
    n: np.ndarray,
    nb: Neighbours,
    beta: float,
    kappa: float,
    max_iterations: int,
    tolerance: float,
    start: tuple[np.ndarray, float, float] | None = None,
) -> Fit:
    """EM for ``mu``, ``theta_repeat`` and ``theta_near`` at a fixed ``beta`` (for a fixed
    ``beta`` the likelihood is concave in them: EM reaches the one maximum)."""
    periods = n.shape[1]
    triggering = periods > 1 and n.sum() > 0
    if start is not None:
        mu, theta_r, theta_n = start
    else:
        mu = np.maximum(n.mean(axis=1) * (0.5 if triggering else 1.0), MU_FLOOR)
        theta_r = theta_n = 0.2 if triggering else 0.0
    r = exposure(n, beta)[:, :periods]
    near = nb.spread(r) if triggering else np.zeros_like(r)
    opp_r = _opportunity(n.sum(axis=0), beta)
    opp_n = _opportunity(n[nb.has_out].sum(axis=0), beta)
    previous = -math.inf
    ll = -math.inf
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (reported in the fit)
        lam = mu[:, None] + theta_r * r + theta_n * near
        ll = float((n * np.log(lam) - lam).sum())
        if abs(ll - previous) <= tolerance * max(1.0, abs(ll)):
            converged = True
            break
        previous = ll
        ratio = np.divide(n, lam, out=np.zeros_like(n), where=n > 0)
        background = (mu[:, None] * ratio).sum(axis=1)
        mu = np.maximum((background + kappa * nb.mean_around(mu)) / (periods + kappa), MU_FLOOR)
        if triggering:
            theta_r = theta_r * float((r * ratio).sum()) / opp_r if opp_r > 0 else 0.0
            theta_n = theta_n * float((near * ratio).sum()) / opp_n if opp_n > 0 else 0.0
    return Fit(
        mu=mu,
        theta_repeat=float(theta_r),
        theta_near=float(theta_n),
        beta=beta,
        kappa=kappa,
        bandwidth_m=nb.bandwidth_m,
        periods=periods,
        iterations=iteration,
        log_likelihood=ll,
        converged=converged,
    )


def fit(
    counts: np.ndarray,
    nb: Neighbours,
    *,
    kappa: float = 1.0,
    beta: float | None = None,
    max_iterations: int = 3000,
    tolerance: float = 1e-10,
) -> Fit:
    """Fit by EM on ``counts`` (units x periods, oldest first; consecutive periods).

    ``beta`` (how fast an event's effect fades) is weakly identified by EM's own step
    over a few periods, so it is profiled instead: EM at each ``beta`` of ``BETA_GRID``
    (a short run, each from the last one's answer), and the best run to convergence."""
    n = np.asarray(counts, dtype=float)
    if n.ndim != 2 or n.shape[0] != nb.size:
        raise ValueError("counts must be units x periods, the units of the neighbours")
    if (n < 0).any() or not np.isfinite(n).all():
        raise ValueError("counts must be finite and not negative")
    if n.shape[1] < 2 or n.sum() == 0:
        return _em(n, nb, 0.5 if beta is None else beta, kappa, max_iterations, tolerance)
    if beta is not None:
        return _em(n, nb, beta, kappa, max_iterations, tolerance)
    trials: list[Fit] = []
    for b in BETA_GRID:  # each started from the last: neighbouring betas fit alike
        last = trials[-1] if trials else None
        start = (last.mu, last.theta_repeat, last.theta_near) if last else None
        trials.append(_em(n, nb, float(b), kappa, PROFILE_ITERATIONS, tolerance, start))
    # Each event brings fewer than one more on average (a stationary process); a fit at
    # or past 1 is a trend the few periods cannot tell from a cascade: not taken.
    stable = [t for t in trials if t.theta_repeat + t.theta_near < 1.0] or trials
    best = max(stable, key=lambda t: t.log_likelihood)
    return _em(
        n,
        nb,
        best.beta,
        kappa,
        max_iterations,
        tolerance,
        (best.mu, best.theta_repeat, best.theta_near),
    )


@dataclass(frozen=True)
class Forecast:
    """The expected count of each unit in the period forecast, and its three parts."""

    expected: np.ndarray
    background: np.ndarray
    repeat: np.ndarray
    near: np.ndarray


def forecast(model: Fit, counts: np.ndarray, nb: Neighbours, horizon: int = 1) -> Forecast:
    """Expected counts ``horizon`` periods after the last one fitted (1: the next). The
    periods in between are taken at their expected counts (exact for this linear model's
    mean)."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    n = np.asarray(counts, dtype=float)
    for _ in range(horizon - 1):
        lam = model.intensity(n, nb)[:, -1]
        n = np.concatenate([n, lam[:, None]], axis=1)
    r = exposure(n, model.beta)[:, -1]
    repeat = model.theta_repeat * r
    near = model.theta_near * nb.spread(r)
    return Forecast(model.mu + repeat + near, model.mu.copy(), repeat, near)


# ---- choosing the smoothing -------------------------------------------------------------


def thinning_score(
    counts: np.ndarray, nb: Neighbours, kappa: float, seeds: Sequence[int] = (1, 2)
) -> float:
    """The mean Poisson log-likelihood of one random half of the events under the model
    fitted on the other half (higher is better)."""
    n = np.asarray(counts, dtype=np.int64)
    scores = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        half = rng.binomial(n, 0.5)
        other = (n - half).astype(float)
        model = fit(half, nb, kappa=kappa, beta=0.5, max_iterations=100, tolerance=1e-7)
        lam = np.maximum(model.intensity(half, nb)[:, : n.shape[1]], MU_FLOOR)
        scores.append(float((other * np.log(lam) - lam).sum()))
    return float(np.mean(scores))


@dataclass(frozen=True)
class Smoothing:
    kappa: float
    bandwidth_m: float
    scores: dict[tuple[float, float], float]


def choose_smoothing(
    counts: np.ndarray,
    xy: np.ndarray,
    *,
    kappas: Sequence[float] = (0.0, 0.5, 2.0, 8.0, 32.0),
    bandwidths_m: Sequence[float] = (250.0, 500.0, 1000.0),
) -> Smoothing:
    """The prior strength and bandwidth with the best thinning score."""
    scores: dict[tuple[float, float], float] = {}
    for bandwidth in bandwidths_m:
        nb = neighbours(xy, bandwidth)
        for kappa in kappas:
            scores[(kappa, bandwidth)] = thinning_score(counts, nb, kappa)
    kappa, bandwidth = max(scores, key=lambda key: scores[key])
    return Smoothing(kappa, bandwidth, scores)


# ---- police open data -------------------------------------------------------------------

UNIT_KINDS = ("lsoa", "cell")


@dataclass(frozen=True)
class Units:
    """The places scored: codes, names and centres (metres, the model's projection)."""

    codes: list[str]
    names: list[str]
    xy: np.ndarray

    def index(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes)}


def cell_code(x: float, y: float, size_m: float) -> str:
    """A square cell's code: its column and row on the projection's grid."""
    return f"C{math.floor(x / size_m)}_{math.floor(y / size_m)}"


def unit_codes(
    crimes: Sequence[StreetCrime], unit: str, projection: Projection, cell_m: float
) -> list[str]:
    """The unit of each crime: its LSOA, or the square cell its point is in."""
    if unit == "lsoa":
        return [c.lsoa_code for c in crimes]
    if unit != "cell":
        raise OpenDataError(f"unknown unit {unit!r} (one of: {', '.join(UNIT_KINDS)})")
    xs, ys = projection.xy(np.array([c.lon for c in crimes]), np.array([c.lat for c in crimes]))
    return [cell_code(x, y, cell_m) for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]


def units_of(
    crimes: Sequence[StreetCrime], unit: str, projection: Projection, cell_m: float
) -> Units:
    """Every unit the crimes fall in: LSOAs centred on the mean of their crimes' points
    (the data has no boundaries), cells on their middle."""
    codes = unit_codes(crimes, unit, projection, cell_m)
    xs, ys = projection.xy(np.array([c.lon for c in crimes]), np.array([c.lat for c in crimes]))
    order = sorted(set(codes))
    at = {code: i for i, code in enumerate(order)}
    idx = np.fromiter((at[c] for c in codes), dtype=np.int64, count=len(codes))
    names = [""] * len(order)
    for crime, i in zip(crimes, idx.tolist(), strict=True):
        if not names[i]:
            names[i] = crime.lsoa_name if unit == "lsoa" else order[i]
    if unit == "cell":
        cols = np.array([int(code[1:].split("_")[0]) for code in order], dtype=float)
        rows = np.array([int(code.split("_")[1]) for code in order], dtype=float)
        xy = np.stack([(cols + 0.5) * cell_m, (rows + 0.5) * cell_m], axis=1)
    else:
        size = np.maximum(np.bincount(idx, minlength=len(order)), 1)
        xy = np.stack(
            [
                np.bincount(idx, weights=xs, minlength=len(order)) / size,
                np.bincount(idx, weights=ys, minlength=len(order)) / size,
            ],
            axis=1,
        )
    return Units(order, names, xy)


def consecutive_months(months: Sequence[str]) -> list[str]:
    """The months from the first to the last; ``OpenDataError`` if one is missing (a
    month without a file is not a month without crime)."""
    if not months:
        raise OpenDataError("no months in the history")
    idx = sorted({month_index(m) for m in months})
    missing = sorted(set(range(idx[0], idx[-1] + 1)) - set(idx))
    if missing:
        raise OpenDataError(
            "the history's months must follow one another: missing "
            + ", ".join(month_name(m) for m in missing)
        )
    return [month_name(m) for m in idx]


@dataclass(frozen=True)
class OpenDataModel:
    """The model fitted on street-level files."""

    unit: str
    cell_m: float
    types: frozenset[str] | None
    projection: Projection
    units: Units
    months: list[str]
    counts: np.ndarray
    nb: Neighbours
    fit: Fit
    smoothing: Smoothing | None

    def forecast(self, horizon: int = 1) -> Forecast:
        return forecast(self.fit, self.counts, self.nb, horizon)

    def scores(self, horizon: int = 1) -> dict[str, float]:
        """Each unit's expected count ``horizon`` months after the last month fitted."""
        expected = self.forecast(horizon).expected
        return dict(zip(self.units.codes, expected.tolist(), strict=True))

    def ranked(self, horizon: int = 1) -> list[tuple[str, float]]:
        """``(code, score)`` highest first (equal scores by code)."""
        return sorted(self.scores(horizon).items(), key=lambda item: (-item[1], item[0]))


def counts_by_unit_month(
    crimes: Sequence[StreetCrime], codes: Sequence[str], units: Units, months: Sequence[str]
) -> np.ndarray:
    at = units.index()
    month_at = {m: i for i, m in enumerate(months)}
    counts = np.zeros((len(units.codes), len(months)), dtype=np.int64)
    for crime, code in zip(crimes, codes, strict=True):
        u, m = at.get(code), month_at.get(crime.month)
        if u is not None and m is not None:
            counts[u, m] += 1
    return counts


def fit_open_data(
    data: StreetData,
    *,
    types: frozenset[str] | None = VICTIM_BASED,
    unit: str = "lsoa",
    cell_m: float = 200.0,
    kappa: float | None = None,
    bandwidth_m: float | None = None,
) -> OpenDataModel:
    """Fit on police open data: every unit seen in any row is scored, the counts are of
    the crime ``types`` (``None``: all). ``kappa`` and ``bandwidth_m`` not given are
    chosen by thinning (``choose_smoothing``)."""
    if not data.crimes:
        raise OpenDataError("the history has no usable rows")
    months = consecutive_months(data.months)
    projection = Projection.about([c.lat for c in data.crimes])
    units = units_of(data.crimes, unit, projection, cell_m)
    modelled = data.of_types(types)
    counts = counts_by_unit_month(
        modelled, unit_codes(modelled, unit, projection, cell_m), units, months
    )
    smoothing = None
    if kappa is None or bandwidth_m is None:
        bandwidths = (
            (bandwidth_m,)
            if bandwidth_m is not None
            else ((250.0, 500.0, 1000.0) if unit == "lsoa" else (cell_m, 2 * cell_m, 4 * cell_m))
        )
        kappas = (kappa,) if kappa is not None else (0.0, 0.5, 2.0, 8.0, 32.0)
        smoothing = choose_smoothing(counts, units.xy, kappas=kappas, bandwidths_m=bandwidths)
        kappa, bandwidth_m = smoothing.kappa, smoothing.bandwidth_m
    nb = neighbours(units.xy, bandwidth_m)
    model = fit(counts, nb, kappa=kappa)
    return OpenDataModel(
        unit, cell_m, types, projection, units, months, counts, nb, model, smoothing
    )
