"""The embedded engine: DuckDB, no server, all cores, out-of-core through its own database file.

Stage tables live in `work_dir/engine.duckdb`, and operators that outgrow `memory_limit`
spill to `work_dir/duckdb-tmp`, so peak memory stays bounded however many rows come in.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from data.filter_sql import DUCKDB, Dialect


class DuckDBEngine:
    name = "duckdb"
    dialect: Dialect = DUCKDB

    def __init__(self, work_dir: Path, threads: int | None = None, memory_limit: str | None = None):
        import duckdb

        self._connection = duckdb.connect(str(work_dir / "engine.duckdb"))
        self._connection.execute(f"SET temp_directory = '{work_dir / 'duckdb-tmp'}'")
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

    def materialize(self, name: str, sql: str) -> None:
        self._connection.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

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
