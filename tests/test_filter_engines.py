"""One pipeline, two engines: Spark (local mode) and DuckDB keep the same pairs for the same
reasons. Spark starts a JVM, so this is slow (about a minute on two cores)."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from tests.helpers.filter_cases import outcomes, run, write_reason_fixture


@pytest.mark.slow
def test_spark_and_duckdb_agree(tmp_path):
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 on PATH")
    write_reason_fixture(tmp_path / "in")
    duck = run(tmp_path, "duckdb")
    spark = run(tmp_path, "spark", "--engine", "spark", "--spark-master", "local[2]")
    assert outcomes(spark) == outcomes(duck)
    kept_duck = pq.read_table(sorted(duck.glob("part-*.parquet")))
    kept_spark = pq.read_table(sorted(spark.glob("part-*.parquet")))
    assert kept_spark.equals(kept_duck)
    reports = [json.loads((out / "report.json").read_text()) for out in (duck, spark)]
    for key in ("accounting", "dropped_by_reason", "languages", "vocabulary"):
        assert reports[0][key] == reports[1][key], key
