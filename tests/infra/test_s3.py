"""Parquet goes to the S3 server and to a local directory through one code path.

The exporter of the data lake writes with pyarrow to whichever filesystem it
is given; these tests hold that the same calls work on the real S3 server
(multipart uploads, ranged reads, listings, deletes) and on local disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from botocore.config import Config
from pyarrow.fs import AwsStandardS3RetryStrategy, FileSelector, FileSystem, FileType, LocalFileSystem

from shared.infra.ports import port_open
from shared.infra.s3 import LocalS3, S3Endpoint
from tests.streams import ENERGY, STREAMS

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")
PARTITIONING = ds.partitioning(pa.schema([("day", pa.string()), ("stream", pa.string())]), flavor="hive")
MIB = 1024 * 1024
# pyarrow uploads in 10 MiB parts, so this goes up as a multipart upload of
# three parts; S3's smallest part (but the last) is 5 MiB.
BLOB_SIZE = 25 * MIB
BLOB_NAME = "blob.bin"
DATASET_NAME = "events"


def sample_events(rows: int = 600) -> pa.Table:
    """Every (day, stream) pair gets rows, so every partition has a file."""
    streams = sorted(STREAMS)
    return pa.table(
        {
            "day": [DAYS[i % len(DAYS)] for i in range(rows)],
            "stream": [streams[(i // len(DAYS)) % len(streams)] for i in range(rows)],
            "seq": pa.array(range(rows), pa.int64()),
            "value": np.random.default_rng(7).normal(size=rows),
        }
    )


def sample_blob(size: int = BLOB_SIZE) -> bytes:
    return np.random.default_rng(11).bytes(size)


def write_blob(filesystem: FileSystem, path: str, blob: bytes) -> None:
    # Written in pieces like a streaming exporter would, not as one buffer.
    with filesystem.open_output_stream(path) as out:
        for start in range(0, len(blob), MIB):
            out.write(blob[start : start + MIB])


@dataclass
class RoundTrip:
    table: pa.Table  # the whole dataset, read back
    one_partition: pa.Table  # read back with a filter on both partition columns
    blob: bytes
    blob_range: bytes  # a ranged read across the first part boundary
    files: set[str]  # relative to the base path
    left_after_delete: list[str]


RANGE_START, RANGE_LENGTH = 10 * MIB - 100, 1000


def write_then_read(filesystem: FileSystem, base_path: str) -> RoundTrip:
    """Write a Hive-partitioned dataset and a large object under base_path,
    read both back, list what is there, then delete it all."""
    dataset_path = f"{base_path}/{DATASET_NAME}"
    blob_path = f"{base_path}/{BLOB_NAME}"
    ds.write_dataset(
        sample_events(),
        dataset_path,
        format="parquet",
        filesystem=filesystem,
        partitioning=PARTITIONING,
        basename_template="part-{i}.parquet",
        existing_data_behavior="error",
    )
    write_blob(filesystem, blob_path, sample_blob())

    dataset = ds.dataset(
        dataset_path, format="parquet", filesystem=filesystem, partitioning=PARTITIONING
    )
    table = dataset.to_table()
    one_partition = dataset.to_table(
        filter=(ds.field("day") == DAYS[1]) & (ds.field("stream") == ENERGY.name)
    )
    with filesystem.open_input_stream(blob_path) as stream:
        blob = stream.read()
    with filesystem.open_input_file(blob_path) as file:
        blob_range = file.read_at(RANGE_LENGTH, RANGE_START)
    listed = filesystem.get_file_info(FileSelector(base_path, recursive=True))
    files = {info.path.removeprefix(f"{base_path}/") for info in listed if info.type == FileType.File}

    filesystem.delete_dir(dataset_path)
    filesystem.delete_file(blob_path)
    left = [info.path for info in filesystem.get_file_info(FileSelector(base_path, recursive=True))]
    return RoundTrip(table, one_partition, blob, blob_range, files, left)


def by_seq(table: pa.Table) -> pa.Table:
    return table.select(["day", "stream", "seq", "value"]).sort_by("seq")


def assert_round_trip(result: RoundTrip) -> None:
    events = sample_events()
    assert by_seq(result.table).equals(by_seq(events))
    expected_partition = events.filter(
        pc.and_(
            pc.equal(events["day"], DAYS[1]), pc.equal(events["stream"], ENERGY.name)
        )
    )
    assert expected_partition.num_rows > 0
    assert by_seq(result.one_partition).equals(by_seq(expected_partition))
    blob = sample_blob()
    assert result.blob == blob
    assert result.blob_range == blob[RANGE_START : RANGE_START + RANGE_LENGTH]
    partitions = {
        f"{DATASET_NAME}/day={day}/stream={stream}/part-0.parquet"
        for day in DAYS
        for stream in STREAMS
    }
    assert result.files == partitions | {BLOB_NAME}
    assert result.left_after_delete == []


def test_round_trip_through_s3(s3_server: S3Endpoint, s3_bucket: str) -> None:
    assert_round_trip(write_then_read(s3_server.filesystem(), s3_bucket))


def test_round_trip_through_a_local_directory(tmp_path) -> None:
    assert_round_trip(write_then_read(LocalFileSystem(), tmp_path.as_posix()))


def test_a_large_object_is_uploaded_in_parts(s3_server: S3Endpoint, s3_bucket: str) -> None:
    blob = sample_blob()
    write_blob(s3_server.filesystem(), f"{s3_bucket}/{BLOB_NAME}", blob)

    # A second client reads the object's metadata, which pyarrow does not show.
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
    )
    try:
        head = client.head_object(Bucket=s3_bucket, Key=BLOB_NAME)
    finally:
        client.close()
    assert head["ContentLength"] == len(blob)
    # A multipart object's ETag ends in "-<number of parts>".
    _, _, parts = head["ETag"].strip('"').rpartition("-")
    assert parts.isdigit() and int(parts) >= 2, head["ETag"]


def test_a_wrong_secret_is_refused(s3_server: S3Endpoint) -> None:
    impostor = dataclasses.replace(s3_server, secret_key=s3_server.secret_key + "x")
    filesystem = impostor.filesystem(retry_strategy=AwsStandardS3RetryStrategy(max_attempts=1))
    with pytest.raises(OSError, match="(?i)signature"):
        filesystem.get_file_info(FileSelector("", recursive=False))


def test_local_s3_keeps_objects_as_files_and_cleans_up() -> None:
    with LocalS3() as server:
        filesystem = server.endpoint.filesystem(allow_bucket_creation=True)
        filesystem.create_dir("lake")
        with filesystem.open_output_stream("lake/day=2026-11-01/part-0.parquet") as out:
            out.write(b"not really parquet")
        stored = server.data_dir / "lake" / "day=2026-11-01" / "part-0.parquet"
        assert stored.read_bytes() == b"not really parquet"
        workdir, port = server.workdir, server.port
    assert workdir is not None and not workdir.exists()
    assert port is not None and not port_open(port)
