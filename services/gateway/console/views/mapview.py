"""Entities (sensors) placed on a plot by latitude and longitude: pure geometry.

Coordinates are projected with Web Mercator, the projection of map tile
servers, so the same points fall on the right streets when a tile server is
configured (CONSOLE_MAP_TILES_URL); without one they are drawn on a plain
plot and no request leaves the gateway's origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TILE = 256
MAX_ZOOM = 19
MAX_LATITUDE = 85.05112878  # Web Mercator's limit
SINGLE_POINT_SCALE = 2.0**14  # a lone sensor: a neighbourhood-sized view around it


@dataclass(frozen=True)
class Placed:
    entity: dict[str, Any]
    x: float
    y: float


@dataclass(frozen=True)
class Tile:
    href: str
    x: float
    y: float
    size: float


@dataclass(frozen=True)
class AreaLabel:
    name: str
    x: float
    y: float  # above the area's highest point


@dataclass(frozen=True)
class MapLayout:
    width: int
    height: int
    points: list[Placed]
    tiles: list[Tile]
    unplaced: int  # entities without coordinates
    areas: list[AreaLabel]


def area_labels(points: Sequence[Placed], offset: float = 14.0) -> list[AreaLabel]:
    """One label per area (a neighbourhood), centred over its points."""
    groups: dict[str, list[Placed]] = {}
    for point in points:
        area = point.entity.get("area")
        if isinstance(area, str) and area:
            groups.setdefault(area, []).append(point)
    return [
        AreaLabel(name, sum(p.x for p in members) / len(members), min(p.y for p in members) - offset)
        for name, members in sorted(groups.items())
    ]


def mercator(latitude: float, longitude: float) -> tuple[float, float]:
    """World pixel coordinates at zoom 0 (0..256 on both axes, y growing southwards)."""
    lat = math.radians(max(min(latitude, MAX_LATITUDE), -MAX_LATITUDE))
    x = (longitude + 180.0) / 360.0 * TILE
    y = (1.0 - math.log(math.tan(lat) + 1.0 / math.cos(lat)) / math.pi) / 2.0 * TILE
    return x, y


def _located(entity: dict[str, Any]) -> bool:
    lat, lon = entity.get("latitude"), entity.get("longitude")
    return (isinstance(lat, int | float) and isinstance(lon, int | float)
            and math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180)


def layout(
    entities: Sequence[dict[str, Any]], width: int, height: int, *, padding: int = 24, tiles_url: str | None = None
) -> MapLayout:
    located = [e for e in entities if _located(e)]
    world = [mercator(e["latitude"], e["longitude"]) for e in located]
    if not world:
        return MapLayout(width, height, [], [], len(entities), [])
    xs, ys = [p[0] for p in world], [p[1] for p in world]
    centre_x, centre_y = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    room_x, room_y = width - 2 * padding, height - 2 * padding
    fits = [room / span for room, span in ((room_x, span_x), (room_y, span_y)) if span > 0]
    scale = min(fits) if fits else SINGLE_POINT_SCALE
    tiles: list[Tile] = []
    if tiles_url:
        zoom = max(0, min(MAX_ZOOM, math.floor(math.log2(scale))))
        scale = 2.0**zoom  # tiles line up only at whole zoom levels
        tiles = _tiles(tiles_url, zoom, centre_x * scale, centre_y * scale, width, height)
    placed = [
        Placed(entity, width / 2 + (x - centre_x) * scale, height / 2 + (y - centre_y) * scale)
        for entity, (x, y) in zip(located, world, strict=True)
    ]
    return MapLayout(width, height, placed, tiles, len(entities) - len(located), area_labels(placed))


def _tiles(url: str, zoom: int, centre_x: float, centre_y: float, width: int, height: int) -> list[Tile]:
    """The tiles covering the view, whose centre is (centre_x, centre_y) in world pixels at ``zoom``."""
    left, top = centre_x - width / 2, centre_y - height / 2
    count = 2**zoom
    tiles = []
    for ty in range(math.floor(top / TILE), math.floor((top + height) / TILE) + 1):
        if not 0 <= ty < count:
            continue
        for tx in range(math.floor(left / TILE), math.floor((left + width) / TILE) + 1):
            href = url.replace("{z}", str(zoom)).replace("{x}", str(tx % count)).replace("{y}", str(ty))
            tiles.append(Tile(href, tx * TILE - left, ty * TILE - top, TILE))
    return tiles
