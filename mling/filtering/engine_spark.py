"""The scale-out engine: Apache Spark, local mode or a cluster (`--spark-master URL`).

Every stage table is written as parquet under `work_dir` and read back, so Spark never holds
more than a stage in memory and each stage can be inspected; view stages are planned into
the stages that read them. On a cluster, `work_dir` (the
`--work-dir` option) must be storage every executor can read, such as a shared file system.
The SQL needs no Python on the executors: ICU runs in the pre-pass, so no UDF is shipped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa

from mling.filtering.filter_sql import SPARK, Dialect, Stage


class SparkEngine:
    name = "spark"
    dialect: Dialect = SPARK

    def __init__(
        self,
        work_dir: Path,
        master: str = "local[*]",
        shuffle_partitions: int = 8,
        driver_memory: str = "2g",
    ):
        # Workers, if any Python ever runs there, use this interpreter and its packages.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        self._work_dir = work_dir
        self._spark = (
            SparkSession.builder.master(master)
            .appName("align-filter")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.local.dir", str(work_dir / "spark-tmp"))
            .getOrCreate()
        )
        self._spark.sparkContext.setLogLevel("ERROR")

    def register(self, name: str, files: list[Path]) -> None:
        self._spark.read.parquet(*map(str, files)).createOrReplaceTempView(name)

    def define(self, stage: Stage) -> None:
        if not stage.table:
            self._spark.sql(stage.sql).createOrReplaceTempView(stage.name)
            return
        path = str(self._work_dir / "spark-stages" / stage.name)
        self._spark.sql(stage.sql).write.mode("overwrite").parquet(path)
        self._spark.read.parquet(path).createOrReplaceTempView(stage.name)

    def query(self, sql: str) -> pa.Table:
        return self._spark.sql(sql).toArrow()

    def export_sorted(self, sql: str, out_dir: Path) -> list[Path]:
        """Range-partitioned by row_id, so reading part files by name gives row_id order."""
        self._spark.sql(sql).orderBy("row_id").write.mode("overwrite").parquet(str(out_dir))
        return sorted(out_dir.glob("part-*.parquet"))

    def close(self) -> None:
        self._spark.stop()
