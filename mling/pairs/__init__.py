"""Image-text pairs: the schema every part reads and writes, and its parquet and webdataset shards."""
