"""How well patrol priorities predict: hit rate and Predictive Accuracy Index on months
the model never saw, against naive baselines (``rtic analytics evaluate``).

- **Hit rate at p %**: the share of the test month's crimes that fell in the top p % of
  units as ranked before that month.
- **Predictive Accuracy Index** (Chainey, Tompson and Uhlig 2008): hit rate over the
  share of the area those units cover. Cells are of equal area, so for cells it is the
  PAI by area; the study area is every cell with at least one crime of any type in the
  history or the test month (a smaller study area than the force's whole land, so the
  PAI is lower than against the whole force: the conservative side). For LSOAs the data
  has no boundaries, so their share is counted in LSOAs (``k / N``): LSOAs hold about
  the same number of residents, not the same area; the PAI of LSOAs is per LSOA.
- **Ties** (many units with the same count in a baseline) are split fairly: when the
  top ``k`` ends inside a group of equal scores, that group counts in proportion (the
  expected hit rate of breaking the tie at random), so no model gains from the order of
  the file.

Models compared, all fitted on the same history:

- ``self-exciting``: ``analytics.hotspots`` (background, repeats, near repeats);
- ``last month's counts``: the naive baseline the issue names;
- ``mean of the history months``: a stronger naive baseline (shown when the history has
  more than one month), the usual level of each unit without any model.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analytics.hotspots import fit_open_data, unit_codes
from analytics.opendata import (
    OpenDataError,
    StreetData,
    month_index,
)

FRACTIONS = (0.01, 0.05, 0.10)
MODEL = "self-exciting (this model)"
LAST_MONTH = "last month's counts"
MEAN = "mean of the history months"


@dataclass(frozen=True)
class Capture:
    """One model at one coverage: ``k`` units of ``n``, the crimes they caught."""

    fraction: float
    k: int
    n: int
    caught: float
    total: int

    @property
    def hit_rate(self) -> float:
        return self.caught / self.total if self.total else 0.0

    @property
    def pai(self) -> float:
        return self.hit_rate / (self.k / self.n) if self.n and self.k else 0.0


def capture(scores: np.ndarray, actual: np.ndarray, fraction: float) -> Capture:
    """The crimes of ``actual`` caught by the top ``fraction`` of units by ``scores``
    (ties at the cut shared in proportion)."""
    if scores.shape != actual.shape:
        raise ValueError("scores and actual must have one value per unit")
    n = len(scores)
    total = int(actual.sum())
    if n == 0:
        return Capture(fraction, 0, 0, 0.0, total)
    k = min(n, max(1, round(fraction * n)))
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    tied = scores == cut
    need = k - int(above.sum())
    caught = float(actual[above].sum()) + need / int(tied.sum()) * float(actual[tied].sum())
    return Capture(fraction, k, n, caught, total)


@dataclass(frozen=True)
class Evaluation:
    """One test month: each model's captures, and what it was fitted on."""

    label: str
    unit: str
    types: str
    history_months: list[str]
    test_month: str
    horizon: int
    units: int
    history_crimes: int
    test_crimes: int
    results: dict[str, list[Capture]]
    fit_summary: dict[str, float | int | bool]


def evaluate_month(
    history: StreetData,
    test: StreetData,
    *,
    types: frozenset[str] | None,
    types_name: str,
    unit: str = "lsoa",
    cell_m: float = 200.0,
    label: str = "",
    fractions: Sequence[float] = FRACTIONS,
) -> Evaluation:
    """Fit on ``history``, rank, and count ``test``'s crimes caught (``test`` holds one
    month, later than every history month)."""
    test_months = test.months
    if len(test_months) != 1:
        raise OpenDataError(f"a test holds one month, not {len(test_months)}")
    model = fit_open_data(history, types=types, unit=unit, cell_m=cell_m)
    horizon = month_index(test_months[0]) - month_index(model.months[-1])
    if horizon < 1:
        raise OpenDataError(
            f"the test month {test_months[0]} is not after the history ({model.months[-1]})"
        )
    # Every unit seen in the history or the test: a unit new in the test month scores 0.
    every = list(model.units.codes)
    known = set(every)
    test_codes = unit_codes(test.crimes, unit, model.projection, cell_m)
    every += sorted({c for c in test_codes if c not in known})
    at = {code: i for i, code in enumerate(every)}
    modelled = test.of_types(types)
    actual = np.zeros(len(every))
    for code in unit_codes(modelled, unit, model.projection, cell_m):
        actual[at[code]] += 1

    def padded(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.zeros(len(every) - len(values))])

    counts = model.counts.astype(float)
    ranked = {
        MODEL: padded(model.forecast(horizon).expected),
        LAST_MONTH: padded(counts[:, -1]),
    }
    if counts.shape[1] > 1:
        ranked[MEAN] = padded(counts.mean(axis=1))
    return Evaluation(
        label=label,
        unit=unit,
        types=types_name,
        history_months=model.months,
        test_month=test_months[0],
        horizon=horizon,
        units=len(every),
        history_crimes=int(counts.sum()),
        test_crimes=int(actual.sum()),
        results={
            name: [capture(scores, actual, f) for f in fractions] for name, scores in ranked.items()
        },
        fit_summary=model.fit.summary(),
    )


def rolling(
    history: StreetData,
    tests: Sequence[StreetData],
    **kw: object,
) -> list[Evaluation]:
    """Each test month in turn, fitted on the history and every earlier test month (a
    rolling origin: the model never sees the month it is scored on)."""
    out: list[Evaluation] = []
    seen = StreetData(list(history.crimes), history.skipped.copy(), list(history.files))
    for test in sorted(tests, key=lambda t: t.months[0] if t.months else ""):
        out.append(evaluate_month(seen, test, **kw))  # type: ignore[arg-type]
        seen.crimes.extend(test.crimes)
        seen.files.extend(test.files)
    return out


# ---- writing it down ----------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def markdown(evaluations: Sequence[Evaluation], command: str, title: str) -> str:
    """The evaluations as a Markdown block: what was fitted and tested, one row per
    model and test month, the mean over the test months, and the command."""
    if not evaluations:
        return ""
    first = evaluations[0]
    unit_words = "LSOAs" if first.unit == "lsoa" else "square cells"
    share = "LSOAs" if first.unit == "lsoa" else "area"
    fractions = [c.fraction for c in next(iter(first.results.values()))]
    head = " | ".join(f"hit rate {100 * f:g} % | PAI {100 * f:g} % of {share}" for f in fractions)
    lines = [
        f"**{title}**",
        "",
        f"Crime types: {first.types}. Units: {unit_words}. "
        + "; ".join(
            f"test {e.test_month}: fitted on {', '.join(_months(e.history_months))} "
            f"({e.history_crimes:,} crimes), {e.test_crimes:,} crimes in {e.units:,} units, "
            f"{e.horizon} month{'s' if e.horizon != 1 else ''} after the last fitted"
            for e in evaluations
        )
        + ".",
        "",
        f"| test month | model | {head} |",
        "|" + " --- |" * (2 + 2 * len(fractions)),
    ]
    for e in evaluations:
        for name, caps in e.results.items():
            cells = " | ".join(f"{_pct(c.hit_rate)} | {c.pai:.2f}" for c in caps)
            lines.append(f"| {e.test_month} | {name} | {cells} |")
    if len(evaluations) > 1:
        names = [n for n in first.results if all(n in e.results for e in evaluations)]
        for name in names:
            means = []
            for i in range(len(fractions)):
                caps = [e.results[name][i] for e in evaluations]
                means.append(
                    f"{_pct(float(np.mean([c.hit_rate for c in caps])))} | "
                    f"{float(np.mean([c.pai for c in caps])):.2f}"
                )
            lines.append(f"| mean | {name} | {' | '.join(means)} |")
    fits = "; ".join(
        f"{e.test_month}: "
        + ", ".join(
            f"{k} {v}"
            for k, v in e.fit_summary.items()
            if k in ("theta_repeat", "theta_near", "beta", "kappa", "bandwidth_m")
        )
        for e in evaluations
    )
    lines += ["", f"Fitted: {fits}.", "", "```sh", command, "```"]
    return "\n".join(lines)


def _months(months: Sequence[str]) -> list[str]:
    return [months[0]] if len(months) == 1 else [f"{months[0]} to {months[-1]}"]


def write_section(doc: Path, label: str, block: str) -> None:
    """Replace what is between ``<!-- evaluation:LABEL -->`` and
    ``<!-- /evaluation:LABEL -->`` in ``doc`` (both must be there)."""
    text = doc.read_text(encoding="utf-8")
    begin, end = f"<!-- evaluation:{label} -->", f"<!-- /evaluation:{label} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise OpenDataError(f"{doc}: no '{begin}' ... '{end}' markers to write between")
    doc.write_text(
        pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text, count=1), encoding="utf-8"
    )


def command_line(argv: Sequence[str]) -> str:
    """The command as it can be typed again."""
    return "rtic analytics evaluate " + " ".join(shlex.quote(a) for a in argv)
