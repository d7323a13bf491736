"""The data lake's exporter: every stream's features, predictions, alerts and hourly history as Parquet."""
