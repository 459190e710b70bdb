"""`make demo` in miniature: simulate, then ingest through sensor requests on an on-disk instance.
(The training half of the demo is the train_churn_job, covered in test_models.py.)"""

from pathlib import Path

from ml_assets import demo

ROOT = Path(__file__).resolve().parents[1]


def test_demo_ingests_every_day_then_nothing_twice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster_home"))
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    assert demo.main(["--days", "9", "--rows-per-day", "100", "--no-train"]) == 0
    out = capsys.readouterr().out
    assert "customers_landing_sensor: 9 run(s) launched" in out
    assert "labels_landing_sensor: 6 run(s) launched" in out  # the demo's labels land 3 days late
    assert out.count("validated_customers") == 9 and "FAILED" not in out
    assert (tmp_path / ".dagster_home" / "dagster.yaml").exists()
    assert demo.main(["--days", "9", "--rows-per-day", "100", "--no-train"]) == 0
    assert "customers_landing_sensor: 0 run(s) launched" in capsys.readouterr().out
