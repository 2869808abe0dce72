"""Retail as the shop's own system holds it: email and age, amount and status, line totals;
its per-run growth and scale presets; defects on the new fields land in the ledger."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from tests.support.generator import audit, generate, load

NEW_FIELDS = {"users": {"email", "age"}, "transactions": {"amount", "status"}, "line_items": {"line_total"}}


def test_new_fields_are_realistic_and_line_totals_are_quantity_times_unit_price(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 9, 3)
    scenario = load("retail")
    found = audit(tmp_path, scenario)  # re-derives every manifest's ledger from the files
    users = list(found.clean_rows["users"].values())
    emails = [u["email"] for u in users]
    assert len(set(emails)) == len(emails)
    for user in users:
        words = unicodedata.normalize("NFKD", user["name"]).encode("ascii", "ignore").decode().lower()
        local, domain = user["email"].rsplit("@", 1)
        assert local.rsplit(".", 1)[0] == ".".join(re.findall(r"[a-z0-9]+", words)), user
        assert domain in {"example.com", "example.org", "example.net"}
    ages = np.array([u["age"] for u in users if u["age"] is not None])
    assert ages.min() >= 18 and ages.max() <= 90 and 33 < ages.mean() < 43
    transactions = list(found.clean_rows["transactions"].values())
    statuses = Counter(t["status"] for t in transactions)
    assert statuses.most_common(1)[0][0] == "completed" and set(statuses) <= {"completed", "pending", "failed", "refunded"}
    amounts = np.array([t["amount"] for t in transactions])
    assert amounts.min() > 0 and 25 < np.median(amounts) < 55  # lognormal(3.6, 0.9): median e^3.6 = 36.6
    items = [i for i in found.clean_rows["line_items"].values() if "unit_price_eur" in i]
    assert items
    for item in items:
        assert item["line_total"] == round(item["quantity"] * item["unit_price_eur"], 2)


def test_defects_on_the_new_fields_are_in_the_ledger(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 4, 4)
    carried: dict[str, set[str]] = {name: set() for name in NEW_FIELDS}
    for name in NEW_FIELDS:
        for manifest in sorted((tmp_path / "manifests" / name).glob("b*.json")):
            for defect in json.loads(manifest.read_text(encoding="utf-8"))["defects"]:
                if defect.get("field") in NEW_FIELDS[name]:
                    carried[name].add(defect["field"])
    assert all(carried.values()), carried
    audit(tmp_path, load("retail"))  # and the ledger still matches the files line by line


def generated(data: Path, entity: str) -> list[int]:
    return [
        json.loads(p.read_text(encoding="utf-8"))["generated_rows"]
        for p in sorted((data / "manifests" / entity).glob("b*.json"))
    ]


def test_growth_preset_adds_10_users_30_transactions_about_100_line_items_per_run(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 2, 6, "growth")
    assert generated(tmp_path, "users") == [10] * 6
    assert generated(tmp_path, "transactions") == [30] * 6
    assert 85 <= np.mean(generated(tmp_path, "line_items")) <= 115
    found = audit(tmp_path, load("retail", "growth"))
    # Transactions go to existing and new users alike (not only the batch's own sign-ups).
    assert len({t["user_id"] for t in found.clean_rows["transactions"].values()}) > 30


def test_scale_preset_adds_100_users_500_transactions_1000_line_items_per_run(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 2, 2, "scale")
    assert generated(tmp_path, "users") == [100, 100]
    assert generated(tmp_path, "transactions") == [500, 500]
    assert generated(tmp_path, "line_items") == [1000, 1000]
