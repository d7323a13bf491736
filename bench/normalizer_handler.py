"""Micro-benchmark of the normalizer's pure batch handler (no broker).

``python -m bench.normalizer_handler [--batch 10000] [--rounds 5]``: builds
batches of raw generator events per stream (2% deliberately invalid), then
times ``Normalizer.handle`` on them and prints events per CPU-second (process
time, so other load on the machine does not count), per stream and over a
batch mixing them all: first with Python's default GC settings, then with
the ones the service sets (services.normalizer.service.tune_gc). One core,
one thread; nothing asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from aiokafka.structs import ConsumerRecord

from services.generator.base import Source
from services.generator.messages import Emitter
from services.generator.settings import GeneratorSettings
from services.generator.simulators import simulate
from services.normalizer.handler import Normalizer
from services.normalizer.service import tune_gc
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog
from shared.topics import Topics

TOPICS = Topics("bench.")


def records(source: Source, count: int, invalid_rate: float, offset: int = 0) -> list[ConsumerRecord]:
    emitter = Emitter(source, seed=7, invalid_rate=invalid_rate)
    topic = TOPICS.raw(source.spec.name)
    return [
        ConsumerRecord(topic, 0, offset + i, 0, 0, key, value, None, len(key), len(value), [])
        for i, (key, value) in enumerate(emitter.batch(count))
    ]


def time_batches(batches: list[list[ConsumerRecord]]) -> tuple[float, int, int]:
    """Median events/s over the batches, with a fresh handler (cold state)."""
    # Warm imports and caches on a throwaway handler: this one would answer
    # those records again from its memory of recent records.
    Normalizer(TOPICS, Catalog(builtin_streams())).handle(batches[0][:200])
    normalizer = Normalizer(TOPICS, Catalog(builtin_streams()))
    rates, outputs, rejected = [], 0, 0
    for batch in batches:
        started = time.process_time()
        result = normalizer.handle(batch)
        rates.append(len(batch) / (time.process_time() - started))
        outputs += len(result.outputs)
        rejected += len(result.rejected)
    return statistics.median(rates), outputs, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--invalid-rate", type=float, default=0.02)
    args = parser.parse_args()
    settings = GeneratorSettings(generator_seed=7, generator_sensors=50)
    factories = {
        spec.name: lambda spec=spec: simulate(spec, settings) for spec in builtin_streams() if spec.simulation is not None
    }
    report: dict[str, object] = {"batch": args.batch, "rounds": args.rounds, "invalid_rate": args.invalid_rate}
    streams: dict[str, list[list[ConsumerRecord]]] = {}
    mixed: list[list[ConsumerRecord]] = [[] for _ in range(args.rounds)]
    for name, make in factories.items():
        source = make()
        streams[name] = [records(source, args.batch, args.invalid_rate, r * args.batch) for r in range(args.rounds)]
        for r, batch in enumerate(streams[name]):
            mixed[r].extend(batch[: args.batch // len(factories)])
    streams["mixed"] = mixed
    for mode in ("default_gc", "service_gc"):
        if mode == "service_gc":
            tune_gc()
        figures = {}
        for name, batches in streams.items():
            rate, outputs, rejected = time_batches(batches)
            figures[name] = {"events_per_cpu_s": round(rate), "features_events": outputs, "dead_letters": rejected}
        report[mode] = figures
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
