"""Seed spread: the same run repeated with other training seeds.

One run's metrics mix the method's effect with the luck of one seed (adapter initialisation, data
order, replay draws). A variant ``<run>__seed<N>`` (``train: {seed: N}`` in ``configs/methods/``)
repeats ``<run>`` with training seed N; the run without the suffix counts as the profile's seed. For
every run that has at least one repeat, :func:`seed_spread` gives the number of seeds and, per metric,
the mean, the sample standard deviation (:math:`s = \\sqrt{\\sum_i (x_i - \\bar x)^2 / (n - 1)}`) and
the range. Two methods whose ranges overlap are not told apart by these seeds.
"""

from __future__ import annotations

import re

import pandas as pd

#: ``<run>__seed<N>``, the suite prefix (``coin/``) allowed.
SEED_RUN = re.compile(r"^(?P<run>.+)__seed(?P<seed>\d+)$")
#: Metrics summarised by default (task-incremental suites).
METRICS = ("MFN", "MAA", "MFT", "BWT")


def seed_groups(run_ids) -> dict[str, list[str]]:
    """``{run: [run ids of its seeds]}`` for every run with at least one ``__seed<N>`` repeat (the run
    itself first when present)."""
    run_ids = list(run_ids)
    groups: dict[str, list[str]] = {}
    for run_id in run_ids:
        match = SEED_RUN.match(run_id)
        if match:
            groups.setdefault(match["run"], []).append(run_id)
    return {run: ([run] if run in run_ids else []) + sorted(repeats, key=lambda r: int(SEED_RUN.match(r)["seed"]))
            for run, repeats in groups.items()}


def seed_spread(metrics: pd.DataFrame, columns=METRICS) -> pd.DataFrame:
    """One row per repeated run of ``metrics`` (indexed by run id, one column per metric): ``seeds`` and,
    for each metric present, ``<metric> mean``, ``<metric> sd``, ``<metric> min`` and ``<metric> max``."""
    rows = []
    for run, members in seed_groups(metrics.index).items():
        row = {"run": run, "seeds": len(members)}
        for column in (c for c in columns if c in metrics.columns):
            values = metrics.loc[members, column].astype(float)
            row.update({f"{column} mean": values.mean(), f"{column} sd": values.std(ddof=1) if len(values) > 1 else None,
                        f"{column} min": values.min(), f"{column} max": values.max()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
