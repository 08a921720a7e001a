"""ALIGN's language-agnostic filters over image-text pairs, on DuckDB or Spark (`data/filter.py`)."""
