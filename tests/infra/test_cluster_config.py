"""The cluster launcher's pure parts: node settings and the in-sync check."""

from __future__ import annotations

from pathlib import Path

from shared.infra.kafka import server_properties
from shared.infra.kafka_cluster import in_sync_everywhere


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_cluster_node_lists_every_voter_and_replicates_everything() -> None:
    node = properties(
        server_properties(9093, 9193, Path("/data/2"), node_id=2, voters={1: 9192, 2: 9193, 3: 9194},
                          replication_factor=3, min_insync_replicas=2)
    )
    assert node["node.id"] == "2"
    assert node["controller.quorum.voters"] == "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
    assert node["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9193"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert node[key] == "3", key
    assert node["min.insync.replicas"] == node["transaction.state.log.min.isr"] == "2"


def test_a_single_node_is_its_own_quorum_with_one_replica() -> None:
    node = properties(server_properties(9092, 9093, Path("/data")))
    assert node["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert node["default.replication.factor"] == node["min.insync.replicas"] == "1"


def test_in_sync_only_where_the_node_is_a_replica() -> None:
    topics = [
        {"topic": "a", "partitions": [
            {"partition": 0, "replicas": [1, 2, 3], "isr": [1, 2, 3]},
            {"partition": 1, "replicas": [1, 2], "isr": [1]},
        ]},
    ]
    assert in_sync_everywhere(1, topics)
    assert in_sync_everywhere(3, topics)
    assert not in_sync_everywhere(2, topics)
