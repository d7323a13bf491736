"""The data lake: streams exported as Parquet to a directory or an
S3-compatible bucket, partitioned Hive-style by kind, stream and date, with
a manifest in PostgreSQL saying which source rows each file holds.

- ``destination``: where files go (a local directory or ``s3://bucket/prefix``)
  and how a file is written whole or not at all;
- ``layout``: file and temporary names;
- ``tables``: the Arrow schema and table of each kind (features,
  predictions, alerts, history);
- ``manifest``: exports, segments and files in PostgreSQL;
- ``read``: features files back into training rows.
"""
