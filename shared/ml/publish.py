"""From a trained model to a served one: its bundle metadata, and the
models-topic event that tells consumers and gateways to load it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from shared.events import ModelPublished
from shared.kafka.clients import event_message, send_all
from shared.kafka.messages import Outgoing
from shared.ml.bundle import BundleMeta, VariantMeta, variant_file
from shared.ml.registry import ModelRecord
from shared.topics import Topics

if TYPE_CHECKING:  # the gateway publishes activations and must not import scikit-learn
    from shared.ml.training import TrainResult


def bundle_meta(stream: str, result: TrainResult, version: int, training_window: dict[str, Any],
                variants: list[tuple[list[str], TrainResult]] = ()) -> BundleMeta:  # type: ignore[assignment]
    return BundleMeta(
        stream=stream,
        task=result.task.name,
        kind=result.task.kind.value,
        algorithm=result.algorithm.value,
        version=version,
        inputs=result.inputs,
        features=result.feature_names,
        target=result.task.target,
        classes=result.classes,
        positive=result.positive,
        feature_means=result.feature_means,
        hyperparameters=result.hyperparameters,
        metrics=result.metrics,
        evaluation=result.evaluation,
        training_window=training_window,
        rows=result.rows_train,
        centers=result.centers,
        variants=[
            VariantMeta(without=without, file=variant_file(without), inputs=variant.inputs,
                        features=variant.feature_names, metrics=variant.metrics, rows=variant.rows_train)
            for without, variant in variants
        ],
        drift=result.reference,
    )


def model_event(record: ModelRecord) -> ModelPublished:
    return ModelPublished(
        stream=record.stream,
        task=record.task,
        model_id=record.id,
        version=record.version,
        algorithm=record.algorithm,
        bundle_dir=record.bundle_dir,
        sha256=record.sha256,
        features=record.features,
        metrics=record.metrics,
        active=record.active,
        shadow=record.shadow,
    )


def model_message(topics: Topics, record: ModelRecord) -> Outgoing:
    """The record's event for the compacted models topic, keyed ``<stream>/<task>``
    (the champion) or ``<stream>/<task>/shadow``."""
    key = f"{record.stream}/{record.task}" + ("/shadow" if record.shadow else "")
    return event_message(topics.models, model_event(record), key)


async def publish_model(producer: AIOKafkaProducer, topics: Topics, record: ModelRecord) -> None:
    """The record on the models topic: every scoring process re-reads the
    registry when one arrives."""
    await send_all(producer, [model_message(topics, record)])
