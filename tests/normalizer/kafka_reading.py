"""Offsets of topics and groups, and running a service module, for the normalizer tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka.partitions import topic_partitions
from tests.processes import REPO


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return await topic_partitions(consumer, topics)
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in await _partitions(bootstrap, topics)}
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await _partitions(bootstrap, topics)))
    finally:
        await consumer.stop()


async def run_module(module: str, env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """Run ``python -m module`` with ``env`` added; returns (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={**os.environ, **env},
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")
