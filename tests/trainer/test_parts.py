"""Window, commands and requests: the trainer's pure parts."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from services.trainer.commands import is_mine, parse_command
from services.trainer.dataset_scan import dataset_needle
from services.trainer.runs import RunRequest, resolve_request
from services.trainer.window import StreamWindow, decode_entries, window_offsets
from shared.events import FeaturesEvent, TrainCommand
from shared.ml.hyperparams import HyperparameterError
from shared.ml.training import TrainingError, UnknownAlgorithm
from shared.streams.catalog import Catalog
from tests.streams import STREAMS


def _record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("commands", 0, 0, 0, 0, None, value, None, 0, len(value), ())


def test_window_keeps_the_newest_events_and_their_offsets() -> None:
    window = StreamWindow("people", "features.people", size=5)
    for offset in range(8):
        window.append(offset % 2, offset, orjson.dumps({"n": offset}))
    window.append(0, 99, None)  # tombstones and empty values are not events
    assert len(window) == 5 and window.appended == 8
    assert [row["n"] for row in decode_entries(window.snapshot())] == [3, 4, 5, 6, 7]
    assert [row["n"] for row in decode_entries(window.snapshot(2))] == [6, 7]
    assert window_offsets("features.people", window.snapshot()) == {
        "topic": "features.people",
        "partitions": {"0": [4, 6], "1": [3, 7]},
        "events": 5,
    }


def test_parse_command() -> None:
    command = TrainCommand(stream="people", task="income", algorithm="mlp", hyperparameters={"epochs": 5}, force=True)
    parsed = parse_command(_record(command.to_bytes()))
    assert isinstance(parsed, TrainCommand) and parsed.run_id == command.run_id
    request = RunRequest.from_command(parsed)
    assert request.describe() == {
        "algorithm": "mlp", "hyperparameters": {"epochs": 5}, "window": None, "dataset_id": None, "source": None,
        "test_size": 0.2, "force": True, "deploy": None, "reason": "",
    }
    assert parse_command(_record(b"nonsense")).startswith("not a train command")
    reason = parse_command(_record(orjson.dumps({"stream": "people", "task": "income", "test_size": 5})))
    assert "test_size" in reason


def test_commands_for_other_streams_are_left_to_their_trainer() -> None:
    def command(stream: str) -> TrainCommand:
        return TrainCommand(stream=stream, task="x")

    catalog = Catalog(STREAMS.values())
    people_only = lambda name: name == "people"  # noqa: E731
    assert is_mine(command("people"), people_only, catalog)
    assert not is_mine(command("energy"), people_only, catalog)
    assert is_mine(command("nonsense"), people_only, catalog)  # someone must fail it
    assert is_mine(command("energy"), lambda name: True, catalog)


@pytest.mark.parametrize(
    ("request_fields", "error", "message"),
    [
        ({"stream": "weather", "task": "x"}, TrainingError, "unknown stream 'weather'"),
        ({"stream": "people", "task": "age"}, TrainingError, "has no task 'age'"),
        ({"stream": "people", "task": "income", "algorithm": "kmeans"}, UnknownAlgorithm, "cannot learn"),
        ({"stream": "people", "task": "income", "hyperparameters": {"trees": 3}}, HyperparameterError, "'trees'"),
    ],
)
def test_requests_are_checked_before_any_data(request_fields: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_request(Catalog(STREAMS.values()), RunRequest(run_id="r", **request_fields))


def test_dataset_needle_matches_encoded_events() -> None:
    event = FeaturesEvent(stream="people", key="k", features={}, scaled={}, scaler_version=1, dataset_id='ds "1"')
    assert dataset_needle('ds "1"') in event.to_bytes()
    assert dataset_needle("ds") not in event.to_bytes()


def test_settings_defaults_derive_group_names_from_prefix_and_streams() -> None:
    from services.consumer.settings import ConsumerSettings
    from services.trainer.settings import TrainerSettings

    trainer = TrainerSettings(topic_prefix="x-", train_streams="people, energy")
    assert trainer.train_streams == ("people", "energy")
    assert trainer.serves("people") and not trainer.serves("pressure")
    # One replica per stream: each needs every command, so each has its own group.
    assert trainer.commands_group == "x-trainer-people-energy"
    assert TrainerSettings(train_group="g").commands_group == "g"
    assert ConsumerSettings(topic_prefix="x-").group == "x-consumer"
    # No list: every stream, those registered later too.
    assert ConsumerSettings().consumer_streams == () and ConsumerSettings().serves("anything_registered_later")
    assert TrainerSettings(topic_prefix="x-").commands_group == "x-trainer-all"
