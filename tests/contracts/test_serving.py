"""`export.serve` and `export.views`: validated against the scenario, parents first, opt-in."""

from __future__ import annotations

from typing import Any

import pytest

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario_loader import load_scenario
from medallion.contracts.serving import ServedEntity, serve_order


def refused(overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_scenario("retail", overrides=overrides)
    return str(caught.value)


def serve(*items: dict[str, Any], views: list[str] | None = None) -> dict[str, Any]:
    return {"export": {"serve": list(items), "views": views or []}}


def test_retail_serves_its_relational_model_parents_first() -> None:
    scenario = load_scenario("retail")
    assert [s.entity for s in scenario.served_entities] == ["users", "transactions", "line_items"]
    assert scenario.served_entities[2].foreign_keys == {"transaction_id": "transactions", "user_id": "users"}
    assert scenario.export.views == [
        "avg_transaction_value_per_user", "top_users_by_spend", "unique_customers_per_product", "users_with_transactions",
    ]


def test_order_follows_the_foreign_keys_whatever_the_listed_order() -> None:
    items = [
        ServedEntity(entity="c", foreign_keys={"b_id": "b", "a_id": "a"}),
        ServedEntity(entity="b", foreign_keys={"a_id": "a"}),
        ServedEntity(entity="a"),
    ]
    assert serve_order(items) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cycle"):
        serve_order([ServedEntity(entity="a", foreign_keys={"b_id": "b"}), ServedEntity(entity="b", foreign_keys={"a_id": "a"})])


def test_each_mistake_is_named_with_its_fix() -> None:
    assert "unknown entity 'shops'" in refused(serve({"entity": "shops"}))
    assert "'users' is not served; add it to export.serve" in refused(
        serve({"entity": "transactions", "foreign_keys": {"user_id": "users"}})
    )
    assert "declare `references: users` on entities.transactions.fields.channel" in refused(
        serve({"entity": "users"}, {"entity": "transactions", "foreign_keys": {"channel": "users"}})
    )
    assert "transactions has no field 'shop_id'" in refused(
        serve({"entity": "users"}, {"entity": "transactions", "foreign_keys": {"shop_id": "users"}})
    )
    assert "cannot reference itself" in refused(serve({"entity": "users", "foreign_keys": {"user_id": "users"}}))
    assert "listed twice" in refused(serve({"entity": "users"}, {"entity": "users"}))
    assert "top_users_by_spend reads 'transactions'; add it to export.serve" in refused(
        serve({"entity": "users"}, views=["top_users_by_spend"])
    )
    assert "export.views" in refused(serve({"entity": "users"}, views=["drop_everything"]))
    # An identifier outside the allowlist never gets near SQL.
    assert "export.serve.0.entity" in refused(serve({"entity": 'users"; DROP TABLE x; --'}))
    clash = {"export": {"serve": [{"entity": "users"}], "tables": ["channel_sales_1h"]},
             "gold": [{**load_scenario("retail").gold[0].model_dump(mode="json"), "name": "users"}]}
    clash["export"]["tables"] = ["users"]
    assert "'users' is also an exported gold table" in refused(clash)


def test_serving_is_opt_in_and_leaves_other_scenarios_hashes_alone() -> None:
    driving = load_scenario("driving")
    assert driving.export.serve == [] and driving.served_entities == []
    dumped = driving.model_dump(mode="json")
    assert dumped["export"]["serve"] == [] and dumped["export"]["views"] == []
    served = load_scenario("driving", overrides={"export": {"serve": [{"entity": "companies"}]}})
    assert served.sha256() != driving.sha256()
