"""``fluxo streams ...`` and ``fluxo send`` against a real gateway: the
walk-through's commands, as a person types them."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.live import read_all


def houses_csv(path: Path, rows: int = 40) -> Path:
    lines = ["house_id,area_m2,rooms,district,price"]
    for i in range(rows):
        district = ("north", "south", "centre")[i % 3]
        lines.append(f"h{i},{50 + i * 3},{1 + i % 5},{district},{100000 + 2000 * (50 + i * 3)}")
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_infer_create_show_list_send_and_delete(fluxo, cli_gateway, tmp_path: Path) -> None:
    table = houses_csv(tmp_path / "houses.csv")
    declaration = tmp_path / "houses.yaml"
    inferred = await fluxo("streams", "infer", str(table), "--target", "price", "-o", str(declaration))
    assert inferred.code == 0, inferred.stderr
    assert "fluxo streams create" in inferred.stdout
    proposal = yaml.safe_load(declaration.read_text())
    assert proposal["name"] == "houses" and proposal["key"] == "house_id"
    assert proposal["tasks"][0]["kind"] == "regression"

    created = await fluxo("streams", "create", str(declaration))
    assert created.code == 0, created.stderr
    assert "stream houses version 1: registered" in created.stdout
    again = await fluxo("streams", "create", str(declaration))
    assert "unchanged" in again.stdout

    listed = await fluxo("streams", "list", "--json")
    assert "houses" in {s["name"] for s in listed.json()}
    shown = await fluxo("streams", "show", "houses")
    assert shown.code == 0 and "houses version 1 (active)" in shown.stdout and "inputs of price:" in shown.stdout

    sent = await fluxo("send", "--stream", "houses", "house_id=h-99", "area_m2=80", "rooms=2", "district=north",
                       "--event-id", "cli-event-1", "--json")
    assert sent.code == 0, sent.stderr
    assert sent.json()["event_ids"] == ["cli-event-1"]
    raw = await read_all(cli_gateway.env["KAFKA_BOOTSTRAP_SERVERS"], f"{cli_gateway.env['TOPIC_PREFIX']}raw.houses")
    assert any(b"cli-event-1" in record.value for record in raw)
    bad = await fluxo("send", "--stream", "houses", "house_id=h-1", "area_m2=-5", "rooms=2", "district=north")
    assert bad.code == 1 and "area_m2" in bad.stderr

    # An incompatible edit is refused with the field named; nothing changes.
    proposal["fields"] = [f for f in proposal["fields"] if f["name"] != "rooms"]
    proposal["tasks"][0]["features"] = [f for f in proposal["tasks"][0]["features"] if f != "rooms"]
    declaration.write_text(yaml.safe_dump(proposal))
    refused = await fluxo("streams", "create", str(declaration))
    assert refused.code == 1 and "error 409" in refused.stderr and "'rooms' cannot be removed" in refused.stderr

    deleted = await fluxo("streams", "delete", "houses")
    assert deleted.code == 0 and "archived" in deleted.stdout
