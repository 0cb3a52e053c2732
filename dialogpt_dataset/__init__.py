"""Reddit dialogue data: Pushshift dumps -> conversations -> Arrow/Parquet, as a datasets builder."""
