"""The embedded engine: DuckDB, no server, all cores, out-of-core.

Stage tables are temporary tables: held in memory while they fit, written to
`work_dir/duckdb-tmp` (with the operators' own spills) once the data outgrows `memory_limit`,
so peak memory stays bounded however many rows come in, and no table is written twice.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mling.filtering.filter_sql import DUCKDB, Dialect, Stage


class DuckDBEngine:
    name = "duckdb"
    dialect: Dialect = DUCKDB

    def __init__(self, work_dir: Path, threads: int | None = None, memory_limit: str | None = None):
        import duckdb

        self._connection = duckdb.connect(":memory:")
        self._connection.execute(f"SET temp_directory = '{work_dir / 'duckdb-tmp'}'")
        self._connection.execute("SET enable_progress_bar = false")
        # Rows come out in row_id order only when asked (ORDER BY); elsewhere order is free.
        self._connection.execute("SET preserve_insertion_order = false")
        if threads:
            self._connection.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self._connection.execute(f"SET memory_limit = '{memory_limit}'")

    def register(self, name: str, files: list[Path]) -> None:
        """Expose parquet files as table `name`."""
        paths = ", ".join(f"'{path}'" for path in files)
        self._connection.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{paths}])"
        )

    def define(self, stage: Stage) -> None:
        kind = "TEMP TABLE" if stage.table else "VIEW"
        self._connection.execute(f"CREATE OR REPLACE {kind} {stage.name} AS {stage.sql}")

    def query(self, sql: str) -> pa.Table:
        """A small result (report aggregates) as an Arrow table."""
        return self._connection.sql(sql).to_arrow_table()

    def export_sorted(self, sql: str, out_dir: Path) -> list[Path]:
        """Write the result ordered by row_id as parquet in out_dir; files in row_id order."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "part-00000.parquet"
        self._connection.execute(f"COPY ({sql} ORDER BY row_id) TO '{path}' (FORMAT parquet)")
        return [path]

    def close(self) -> None:
        self._connection.close()
