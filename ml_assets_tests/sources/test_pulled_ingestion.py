"""Pulled datasets through Dagster: a day from PostgreSQL and a day from an HTTP JSON API go through
the same raw archive -> validation -> quarantine -> accounting assets as a landed file, idempotently."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest
import sqlalchemy as sa
from pandera.typing import Series

from ml_assets.assets.ingestion import build_ingestion_assets
from ml_assets.definitions import daily_partitions
from ml_assets.io import JsonIOManager, LandingZoneResource, ParquetIOManager
from ml_assets.problem import DatasetSpec
from ml_assets.sources import HttpJsonSource, SqlSource
from ml_assets_tests.postgres import scratch_database, sqlalchemy_url

DAY = "2026-01-05"


class Orders(pa.DataFrameModel):
    order_id: Series[str] = pa.Field(str_length={"min_value": 1})
    ordered_on: Series[pd.Timestamp]
    quantity: Series[int] = pa.Field(ge=1, le=100)

    class Config:
        strict = True
        unique = ["order_id", "ordered_on"]


ROWS = [("o1", DAY, 3), ("o2", DAY, 5), ("o3", DAY, 500), ("o4", "2026-01-06", 1)]  # o3: out of range


def _materialize(spec: DatasetSpec, tmp_path, max_rate: float = 0.5) -> dg.ExecuteInProcessResult:
    """One bad row in three: above the default 5 % quarantine rate, so the tests allow 50 %."""
    warehouse = str(tmp_path / "warehouse")
    return dg.materialize(build_ingestion_assets(spec, daily_partitions("2026-01-01")), partition_key=DAY,
                          raise_on_error=False,
                          run_config={"ops": {f"validate_{spec.name}": {"config": {"max_quarantine_rate": max_rate}}}},
                          resources={
                              "io_manager": ParquetIOManager(base_path=warehouse),
                              "json_io_manager": JsonIOManager(base_path=warehouse),
                              "landing": LandingZoneResource(landing_dir=str(tmp_path / "landing"),
                                                             archive_dir=str(tmp_path / "raw"))})


def _outcome(result: dg.ExecuteInProcessResult, name: str) -> dict:
    mats = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node(f"validate_{name}")}
    raw = {k: v.value for k, v in result.asset_materializations_for_node(f"raw_{name}")[0].metadata.items()}
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    return {"valid": mats[f"validated_{name}"], "quarantined": mats[f"quarantined_{name}"], "raw": raw,
            "checks": checks}


@pytest.fixture(scope="module")
def postgres_orders():
    with scratch_database("pulled") as name:
        url = sqlalchemy_url(name)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE orders (order_id TEXT, ordered_on DATE, quantity INTEGER)"))
            conn.execute(sa.text("INSERT INTO orders VALUES (:i, :d, :q)"),
                         [{"i": i, "d": d, "q": q} for i, d, q in ROWS])
        engine.dispose()
        yield url


def test_a_day_pulled_from_postgres_is_archived_validated_and_quarantined(postgres_orders, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", postgres_orders)  # the secret lives in the environment
    spec = DatasetSpec("orders", Orders, "ordered_on",
                       source=SqlSource(table="orders", date_column="ordered_on", url_env="ORDERS_DB_URL"))
    first = _materialize(spec, tmp_path)
    assert first.success
    outcome = _outcome(first, "orders")
    assert (outcome["valid"]["dagster/row_count"], outcome["quarantined"]["dagster/row_count"]) == (2, 1)
    assert outcome["valid"]["records_in"] == 3 and outcome["checks"]["row_accounting"]
    assert "ORDERS_DB_URL" in outcome["raw"]["source"] and "postgres" not in outcome["raw"]["source"]
    again = _outcome(_materialize(spec, tmp_path), "orders")  # the same content: the same archived file
    assert again["raw"]["sha256"] == outcome["raw"]["sha256"] and again["raw"]["archive"] == outcome["raw"]["archive"]
    blocked = _materialize(spec, tmp_path, max_rate=0.05)  # blocked means blocked, whatever the source
    assert not blocked.success and not (tmp_path / "warehouse" / "validated_orders" / f"{DAY}.parquet").exists()


def test_a_source_failure_fails_the_run_naming_the_source_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("ORDERS_DB_URL", raising=False)
    spec = DatasetSpec("orders", Orders, "ordered_on",
                       source=SqlSource(table="orders", date_column="ordered_on", url_env="ORDERS_DB_URL"))
    result = _materialize(spec, tmp_path)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    assert "ORDERS_DB_URL" in failure.error.message and "Fix:" in failure.error.message


@pytest.fixture
def orders_api():
    pages = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            page = self.path.partition("page=")[2][:1] or "1"
            body = json.dumps(pages[page]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_port}"
    pages.update({"1": {"records": [{"order_id": i, "ordered_on": d, "quantity": q} for i, d, q in ROWS[:2]],
                        "next": f"{base}/orders?page=2"},
                  "2": {"records": [{"order_id": "o3", "ordered_on": DAY, "quantity": "three"}], "next": None}})
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield base
    server.shutdown()


def test_a_day_pulled_from_an_http_api_goes_through_the_same_validation(orders_api, tmp_path):
    spec = DatasetSpec("orders", Orders, "ordered_on", source=HttpJsonSource(url=f"{orders_api}/orders?day={{day}}"))
    result = _materialize(spec, tmp_path)
    assert result.success
    outcome = _outcome(result, "orders")
    assert (outcome["valid"]["dagster/row_count"], outcome["quarantined"]["dagster/row_count"]) == (2, 1)
    assert outcome["checks"]["row_accounting"]
    quarantine = pd.read_parquet(tmp_path / "warehouse" / "quarantined_orders" / f"{DAY}.parquet")
    assert "quantity" in quarantine["quarantine_reason"].iloc[0]  # "three" is quarantined with a reason


def pulled_churn():
    """Churn with its customers pulled from a database instead of landed as files."""
    from ml_examples.churn.problem import CHURN, ChurnCustomers

    source = SqlSource(table="customers", date_column="snapshot_date", url_env="CUSTOMERS_DB_URL")
    return CHURN.evolve(ref="ml_assets_tests.sources.test_pulled_ingestion:pulled_churn",
                        inputs=DatasetSpec("customers", ChurnCustomers, "snapshot_date", source=source))


def test_a_pulled_dataset_is_fetched_by_its_schedule_not_a_landing_sensor():
    from ml_assets.definitions import build_definitions

    defs = build_definitions(["ml_assets_tests.sources.test_pulled_ingestion:pulled_churn"])
    assert {s.name for s in defs.sensors} >= {"labels_landing_sensor"}
    assert "customers_landing_sensor" not in {s.name for s in defs.sensors}
    assert defs.resolve_schedule_def("customers_daily_schedule").job_name == "ingest_customers_job"
    assert "customers_landing_inventory" not in {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
