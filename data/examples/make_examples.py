"""Write the example data files in this folder (deterministic: the same bytes on every run).

    python data/examples/make_examples.py

- homes.csv: house sales (price in dollars) with yes/no text columns, blank and `NA` cells,
  a row number, a constant column and a few sales without a price;
- churn.csv: customers with text columns and blanks, and a yes/no text target (churned);
- penguins.csv: three species from measurements, an island and a sex with blanks.

The relationships are made up, with noise, so that a model has something real to find.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _blank(rng: np.random.Generator, values: list[object], share: float, token: str = "") -> None:
    for i in np.flatnonzero(rng.random(len(values)) < share).tolist():
        values[i] = token


def _write(name: str, columns: dict[str, list[object]]) -> None:
    rows = zip(*columns.values(), strict=True)
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def homes(rows: int = 400) -> None:
    rng = np.random.default_rng(12)
    lot = rng.integers(1600, 16000, rows)
    bedrooms = rng.integers(1, 6, rows)
    bathrooms = np.minimum(rng.integers(1, 4, rows), bedrooms)
    stories = rng.integers(1, 5, rows)
    yes = {
        name: rng.random(rows) < share
        for name, share in (
            ("driveway", 0.85),
            ("recroom", 0.2),
            ("fullbase", 0.35),
            ("gashw", 0.05),
            ("airco", 0.3),
            ("prefarea", 0.25),
        )
    }
    garage = rng.integers(0, 4, rows)
    price = (
        18000
        + 3.6 * lot
        + 3000 * bedrooms
        + 14000 * bathrooms
        + 6500 * stories
        + 7000 * yes["driveway"]
        + 4500 * yes["recroom"]
        + 5500 * yes["fullbase"]
        + 12000 * yes["gashw"]
        + 12500 * yes["airco"]
        + 4000 * garage
        + 9500 * yes["prefarea"]
        + rng.normal(0, 9000, rows)
    )
    columns: dict[str, list[object]] = {
        "sale": list(range(1, rows + 1)),
        "lotsize": lot.tolist(),
        "bedrooms": bedrooms.tolist(),
        "bathrms": bathrooms.tolist(),
        "stories": stories.tolist(),
        **{name: ["yes" if v else "no" for v in flags] for name, flags in yes.items()},
        "garagepl": garage.tolist(),
        "country": ["CA"] * rows,
        "price": [int(round(p, -2)) for p in price],
    }
    _blank(rng, columns["lotsize"], 0.04, "NA")
    _blank(rng, columns["airco"], 0.05)
    _blank(rng, columns["garagepl"], 0.03)
    _blank(rng, columns["price"], 0.02)
    _write("homes.csv", columns)


def churn(rows: int = 600) -> None:
    rng = np.random.default_rng(7)
    tenure = rng.integers(0, 72, rows)
    contract = rng.choice(["month-to-month", "one year", "two year"], rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["fiber", "dsl", "none"], rows, p=[0.45, 0.35, 0.2])
    monthly = np.round(
        20 + 50 * (internet == "fiber") + 25 * (internet == "dsl") + rng.normal(0, 8, rows), 2
    )
    calls = rng.poisson(1.2, rows)
    paperless = rng.random(rows) < 0.6
    payment = rng.choice(["card", "bank transfer", "check"], rows)
    logit = (
        -1.2
        + 1.6 * (contract == "month-to-month")
        - 0.9 * (contract == "two year")
        - 0.045 * tenure
        + 0.9 * (internet == "fiber")
        + 0.45 * calls
        + 0.4 * paperless
        + 0.5 * (payment == "check")
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    columns: dict[str, list[object]] = {
        "customer": [f"C{i:05d}" for i in rng.permutation(rows) + 1],
        "tenure": tenure.tolist(),
        "contract": contract.tolist(),
        "internet": internet.tolist(),
        "monthly_charges": monthly.tolist(),
        "support_calls": calls.tolist(),
        "paperless": ["yes" if p else "no" for p in paperless],
        "payment": payment.tolist(),
        "churned": ["yes" if c else "no" for c in churned],
    }
    _blank(rng, columns["payment"], 0.06)
    _blank(rng, columns["monthly_charges"], 0.03, "N/A")
    _blank(rng, columns["churned"], 0.01)
    _write("churn.csv", columns)


def penguins(rows: int = 300) -> None:
    rng = np.random.default_rng(3)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], rows, p=[0.45, 0.2, 0.35])
    centre = {
        "Adelie": (38.8, 190.0, 3700.0),
        "Chinstrap": (48.8, 196.0, 3730.0),
        "Gentoo": (47.5, 217.0, 5080.0),
    }
    bill = np.array([centre[s][0] for s in species]) + rng.normal(0, 2.6, rows)
    flipper = np.array([centre[s][1] for s in species]) + rng.normal(0, 6.5, rows)
    mass = np.array([centre[s][2] for s in species]) + rng.normal(0, 420, rows)
    islands = {
        "Adelie": ["Torgersen", "Biscoe", "Dream"],
        "Chinstrap": ["Dream"],
        "Gentoo": ["Biscoe"],
    }
    island = [islands[s][rng.integers(len(islands[s]))] for s in species]
    sex = rng.choice(["female", "male"], rows).tolist()
    columns: dict[str, list[object]] = {
        "island": island,
        "bill_length_mm": np.round(bill, 1).tolist(),
        "flipper_length_mm": np.round(flipper).astype(int).tolist(),
        "body_mass_g": (np.round(mass / 25) * 25).astype(int).tolist(),
        "sex": sex,
        "species": species.tolist(),
    }
    _blank(rng, columns["sex"], 0.04, "NA")
    _blank(rng, columns["body_mass_g"], 0.02)
    _write("penguins.csv", columns)


if __name__ == "__main__":
    homes()
    churn()
    penguins()
