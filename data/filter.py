"""Filter image-text pairs with ALIGN's language-agnostic rules, on DuckDB or Spark.

    python data/filter.py --input SHARDS... --output FILTERED_DIR

The code is in `mling.filtering.pipeline` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/filter.md explains them.
"""

from mling.filtering.pipeline import main

if __name__ == "__main__":
    raise SystemExit(main())
