"""acctconn audit verify: a valid export passes; each way of tampering with it is named, as the
right kind of problem at the right event. The chains are built here from docs/audit.md, not
with the CLI's code (nor the service's)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from acctconn.main import cli
from acctconn.verify import canonical, event_hash

CONNECTION = "0f8fad5b-d9cb-469f-a165-70867728950e"
CHAIN = f"CONNECTION#{CONNECTION}"
OTHER_CHAIN = "REGISTRY#SPACE#demo"

#: docs/audit.md's example, its canonical form and hash, as the page prints them.
DOC_EVENT = {
    "eventId": "000001",
    "connectionId": CONNECTION,
    "spaceId": "demo",
    "accountId": "111122223333",
    "type": "REQUESTED",
    "actor": "alice",
    "at": "2026-12-02T10:00:00.000Z",
    "fromStatus": None,
    "toStatus": "PENDING_APPROVAL",
    "detail": "requested by alice — «Production»",
    "chain": CHAIN,
    "seq": 1,
    "prevHash": None,
}
DOC_CANONICAL = (
    '{"accountId":"111122223333","actor":"alice","at":"2026-12-02T10:00:00.000Z",'
    f'"chain":"{CHAIN}","connectionId":"{CONNECTION}",'
    '"detail":"requested by alice — «Production»","eventId":"000001","seq":1,"spaceId":"demo",'
    '"toStatus":"PENDING_APPROVAL","type":"REQUESTED"}'
)
DOC_HASH = "a81f5aa7090bfb3187819dd5d16d76b526c36ba7b1d0f03edbb5de241fa29426"


def doc_hash(event: dict[str, Any]) -> str:
    """docs/audit.md's rule written out by hand: sorted keys, no nulls, no hash, each value
    (a string or an integer) as JSON without \\u escapes, no whitespace, UTF-8."""
    fields = sorted((key, value) for key, value in event.items() if key != "hash" and value is not None)
    parts = []
    for key, value in fields:
        assert isinstance(value, str | int) and not isinstance(value, bool), key
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
        parts.append(f'"{key}":{text}')
    return hashlib.sha256(("{" + ",".join(parts) + "}").encode("utf-8")).hexdigest()


def sealed(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "hash": doc_hash(event)}


def chain_events(chain: str, count: int, *, prefix: str, first_seq: int = 1) -> list[dict[str, Any]]:
    """``count`` events of ``chain``, linked as the service links them."""
    events: list[dict[str, Any]] = []
    previous: str | None = None
    for seq in range(first_seq, first_seq + count):
        event = {
            "eventId": f"{prefix}{seq}",
            "type": "LINK_SENT",
            "actor": "alice",
            "at": f"2026-12-02T10:00:{seq:02d}.000Z",
            "detail": f"step {seq}",
            "chain": chain,
            "seq": seq,
        }
        if previous is not None:
            event["prevHash"] = previous
        events.append(sealed(event))
        previous = events[-1]["hash"]
    return events


def valid() -> list[dict[str, Any]]:
    """Two chains of an export: five events of a connection, three of the registry,
    interleaved as the export gives them (each chain in seq order)."""
    connection = chain_events(CHAIN, 5, prefix="c")
    registry = chain_events(OTHER_CHAIN, 3, prefix="r")
    return [connection[0], registry[0], connection[1], connection[2], registry[1], connection[3]] + [
        registry[2],
        connection[4],
    ]


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events), "utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli, list(args))


def verify_json(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run("--json", "audit", "verify", str(path), *args)
    return result.exit_code, json.loads(result.stdout)


def by_id(events: list[dict[str, Any]], event_id: str) -> int:
    return next(index for index, event in enumerate(events) if event["eventId"] == event_id)


def test_the_doc_example_has_the_documented_canonical_form_and_hash() -> None:
    assert doc_hash(DOC_EVENT) == DOC_HASH
    assert canonical(DOC_EVENT).decode("utf-8") == DOC_CANONICAL
    assert event_hash(DOC_EVENT) == DOC_HASH


def test_the_doc_example_verifies(tmp_path: Path) -> None:
    exported = {key: value for key, value in DOC_EVENT.items() if value is not None}
    path = write(tmp_path / "doc.jsonl", [{**exported, "hash": DOC_HASH}])
    result = run("audit", "verify", str(path))
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "1 events in 1 chains: intact\n"


def test_an_intact_export_passes(tmp_path: Path) -> None:
    path = write(tmp_path / "events.jsonl", valid())
    result = run("audit", "verify", str(path))
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "8 events in 2 chains: intact\n"
    assert result.stderr == ""
    code, report = verify_json(path)
    assert code == 0
    assert report["events"] == 8 and report["chains"] == 2 and report["problems"] == []
    assert report["intact"] is True


def only_problem(path: Path, *args: str) -> dict[str, Any]:
    code, report = verify_json(path, *args)
    assert code == 1
    assert len(report["problems"]) == 1, report["problems"]
    problem: dict[str, Any] = report["problems"][0]
    return problem


def test_a_changed_field_is_modified(tmp_path: Path) -> None:
    events = valid()
    events[by_id(events, "c3")]["detail"] = "step 3, approved"
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert (problem["kind"], problem["chain"], problem["seq"], problem["eventId"]) == (
        "modified",
        CHAIN,
        3,
        "c3",
    )
    result = run("audit", "verify", str(tmp_path / "e.jsonl"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"modified: chain {CHAIN}, seq 3, eventId c3, line 4: hash is not the SHA-256 of its canonical form",
        "8 events in 2 chains: 1 problems",
    ]


def test_a_deleted_middle_event_is_removed(tmp_path: Path) -> None:
    events = valid()
    del events[by_id(events, "c3")]
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert (problem["kind"], problem["chain"], problem["seq"], problem["eventId"]) == (
        "removed",
        CHAIN,
        3,
        "c4",
    )
    assert problem["detail"] == "seq 3 missing between eventId c2 and c4"


def test_two_deleted_events_are_one_gap(tmp_path: Path) -> None:
    events = [event for event in valid() if event["eventId"] not in ("c2", "c3")]
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert problem["kind"] == "removed" and problem["detail"] == "seq 2..3 missing between eventId c1 and c4"


def test_two_swapped_lines_are_reordered(tmp_path: Path) -> None:
    events = valid()
    second, third = by_id(events, "c2"), by_id(events, "c3")
    events[second], events[third] = events[third], events[second]
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert (problem["kind"], problem["chain"], problem["seq"], problem["eventId"]) == (
        "reordered",
        CHAIN,
        2,
        "c2",
    )
    assert "comes after seq 3 (eventId c3" in problem["detail"]


def test_time_going_backwards_along_seq_is_reordered(tmp_path: Path) -> None:
    events = chain_events(CHAIN, 3, prefix="c")
    events[2] = sealed({**events[2], "at": "2026-12-02T09:00:00.000Z", "hash": None})
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert (problem["kind"], problem["seq"], problem["eventId"]) == ("reordered", 3, "c3")
    assert "before that of seq 2" in problem["detail"]


def test_milliseconds_of_clock_skew_are_not_reordered(tmp_path: Path) -> None:
    events = chain_events(CHAIN, 2, prefix="c")
    first = {key: value for key, value in events[0].items() if key != "hash"}
    events[0] = sealed({**first, "at": "2026-12-02T10:00:02.300Z"})
    events[1] = sealed({**{k: v for k, v in events[1].items() if k != "hash"}, "prevHash": events[0]["hash"]})
    code, report = verify_json(write(tmp_path / "e.jsonl", events))
    assert (code, report["problems"]) == (0, [])


def test_a_forged_event_with_a_wrong_prev_hash_is_inserted(tmp_path: Path) -> None:
    events = valid()
    forged = sealed(
        {
            "eventId": "forged",
            "type": "APPROVAL_RECORDED",
            "actor": "mallory",
            "at": "2026-12-02T10:00:06.000Z",
            "chain": CHAIN,
            "seq": 6,
            "prevHash": events[by_id(events, "c4")]["hash"],  # not seq 5's
        }
    )
    problem = only_problem(write(tmp_path / "e.jsonl", [*events, forged]))
    assert (problem["kind"], problem["chain"], problem["seq"], problem["eventId"]) == (
        "inserted",
        CHAIN,
        6,
        "forged",
    )
    assert "prevHash is not the hash of seq 5 (eventId c5" in problem["detail"]


def test_a_forged_event_at_a_taken_seq_is_inserted(tmp_path: Path) -> None:
    events = valid()
    before = events[by_id(events, "c2")]
    # Even linked to seq 2 with a hash of its own content: seq 4 links to the real seq 3.
    forged = sealed(
        {
            "eventId": "forged",
            "type": "APPROVAL_RECORDED",
            "actor": "mallory",
            "at": "2026-12-02T10:00:03.000Z",
            "chain": CHAIN,
            "seq": 3,
            "prevHash": before["hash"],
        }
    )
    events.insert(by_id(events, "c3"), forged)  # before the real one, in the file
    problem = only_problem(write(tmp_path / "e.jsonl", events))
    assert (problem["kind"], problem["chain"], problem["seq"], problem["eventId"]) == (
        "inserted",
        CHAIN,
        3,
        "forged",
    )
    assert "a second event at seq 3, besides seq 3 (eventId c3" in problem["detail"]


def test_a_removed_hash_is_unchained_a_problem_only_with_strict(tmp_path: Path) -> None:
    events = valid()
    del events[by_id(events, "c3")]["hash"]
    path = write(tmp_path / "e.jsonl", events)
    code, report = verify_json(path)
    assert (code, report["problems"]) == (0, [])
    [unchained] = report["unchained"]
    assert (unchained["kind"], unchained["chain"], unchained["seq"], unchained["eventId"]) == (
        "unchained",
        CHAIN,
        3,
        "c3",
    )
    result = run("audit", "verify", str(path))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "8 events in 2 chains: intact (1 unchained (not checked))"
    problem = only_problem(path, "--strict")
    assert (problem["kind"], problem["eventId"]) == ("unchained", "c3")


def test_a_removed_hash_does_not_hide_a_change(tmp_path: Path) -> None:
    events = valid()
    changed = events[by_id(events, "c3")]
    del changed["hash"]
    changed["actor"] = "mallory"
    code, report = verify_json(write(tmp_path / "e.jsonl", events))
    assert code == 1
    [problem] = report["problems"]
    assert (problem["kind"], problem["eventId"]) == ("modified", "c3")


def test_events_from_before_the_chains_are_unchained(tmp_path: Path) -> None:
    old = {"eventId": "old1", "type": "REQUESTED", "actor": "alice", "at": "2025-01-01T00:00:00.000Z"}
    path = write(tmp_path / "e.jsonl", [old, *valid()])
    code, report = verify_json(path)
    assert code == 0 and report["events"] == 9 and report["chains"] == 2
    [unchained] = report["unchained"]
    assert (unchained["kind"], unchained["chain"], unchained["eventId"]) == ("unchained", None, "old1")
    assert "no chain/seq/hash" in unchained["detail"]
    assert verify_json(path, "--strict")[0] == 1


def test_a_chain_starting_mid_way_is_fine_and_counted(tmp_path: Path) -> None:
    events = chain_events(CHAIN, 5, prefix="c")[2:]  # seq 3..5 of a period's export
    result = run("audit", "verify", str(write(tmp_path / "e.jsonl", events)))
    assert result.exit_code == 0, result.stdout
    assert result.stdout == (
        "3 events in 1 chains: intact (1 chains start mid-way (check them with --digests))\n"
    )
    assert verify_json(tmp_path / "e.jsonl")[1]["chainsStartingMidWay"] == 1


def test_a_line_that_is_not_a_json_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    lines = [json.dumps(event) for event in chain_events(CHAIN, 2, prefix="c")]
    path.write_text(f"{lines[0]}\n[1, 2]\n{{not json\n{lines[1]}\n")
    code, report = verify_json(path)
    assert code == 1
    assert [(problem["kind"], problem["line"]) for problem in report["problems"]] == [
        ("malformed", 2),
        ("malformed", 3),
    ]
    result = run("audit", "verify", str(path))
    assert "malformed: no chain, line 2: the line is not a JSON object" in result.stdout


@pytest.mark.parametrize("args", [("nope.jsonl",), ()])
def test_a_missing_file_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run("audit", "verify", *(str(tmp_path / arg) for arg in args))
    assert result.exit_code == 2
    assert result.stdout == ""
