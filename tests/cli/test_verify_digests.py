"""acctconn audit verify with --digests and --public-key: an intact export and its digests pass;
each kind of tampering with the events or the digests is named as the right problem. The
digests are built and signed here from docs/audit.md ("The digest format"), with a key of the
test's own, as KMS signs (a 32-byte PSS salt) and as moto's emulated KMS does (the longest salt)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from acctconn.main import cli
from tests.cli.test_verify import CHAIN, OTHER_CHAIN, chain_events, sealed, valid, write

KEY = rsa.generate_private_key(public_exponent=65537, key_size=3072)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
# The periods' ends: the events of valid() are at 10:00:01 .. 10:00:05 (two chains).
ENDS = ["2026-12-02T10:00:02.500Z", "2026-12-02T10:00:04.000Z", "2026-12-02T10:00:06.000Z",
        "2026-12-02T10:00:08.000Z"]  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def doc_digest_hash(digest: dict[str, Any]) -> str:
    body = {k: v for k, v in digest.items() if k not in ("hash", "signature") and v is not None}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def sign(digest: dict[str, Any], key: rsa.RSAPrivateKey = KEY, salt: Any = 32) -> dict[str, Any]:
    signature = key.sign(
        bytes.fromhex(digest["hash"]), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt),
        hashes.SHA256(),
    )  # fmt: skip
    return {**digest, "signature": base64.b64encode(signature).decode()}


def make_digests(events: list[dict[str, Any]], salt: Any = 32) -> list[dict[str, Any]]:
    """The digests the service would make of ``events`` for the periods ending at ENDS."""
    digests: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for end in ENDS:
        start = previous["to"] if previous else None
        chains: dict[str, dict[str, Any]] = {}
        for event in events:
            if (start is None or at(event["at"]) > at(start)) and at(event["at"]) <= at(end):
                entry = chains.setdefault(event["chain"], {"chain": event["chain"], "count": 0, "seq": 0})
                entry["count"] += 1
                if event["seq"] > entry["seq"]:
                    entry.update(seq=event["seq"], hash=event["hash"])
        digest = {
            "version": 1, "from": start, "to": end, "chains": [chains[name] for name in sorted(chains)],
            "eventCount": sum(entry["count"] for entry in chains.values()),
            "previousHash": previous["hash"] if previous else None, "madeAt": end, "keyId": KEY_ID,
            "signingAlgorithm": "RSASSA_PSS_SHA_256",
        }  # fmt: skip
        digest["hash"] = doc_digest_hash(digest)
        previous = sign(digest, salt=salt)
        digests.append(previous)
    return digests


def pem(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    events = valid()
    (tmp_path / "digests.json").write_text(json.dumps(make_digests(events)))
    (tmp_path / "key.pem").write_bytes(pem(KEY))
    return {"events": write(tmp_path / "events.jsonl", events), "digests": tmp_path / "digests.json",
            "key": tmp_path / "key.pem"}  # fmt: skip


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli, list(args))


def verify(files: dict[str, Path], *extra: str, as_json: bool = True) -> tuple[int, Any]:
    args = ["audit", "verify", str(files["events"]), "--digests", str(files["digests"]),
            "--public-key", str(files["key"]), *extra]  # fmt: skip
    result = run(*(["--json", *args] if as_json else args))
    return result.exit_code, json.loads(result.stdout) if as_json else result.stdout


def problems(files: dict[str, Path], *extra: str) -> list[dict[str, Any]]:
    code, report = verify(files, *extra)
    assert code == 1, report
    found: list[dict[str, Any]] = report["problems"]
    return found


def rewrite(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def test_an_intact_export_and_its_digests_pass(files: dict[str, Path]) -> None:
    code, text = verify(files, as_json=False)
    assert code == 0, text
    assert text.strip().splitlines()[-1] == (
        "8 events in 2 chains: intact (4 digests up to 2026-12-02T10:00:08.000Z signed and chained, "
        "each period as its digest records)"
    )
    code, report = verify(files)
    assert code == 0 and report["intact"] is True
    assert report["digests"] == {"count": 4, "lastTo": ENDS[-1], "uncovered": 0, "notes": []}
    # The last period had no event: its digest is an empty one, and it holds.
    assert json.loads(files["digests"].read_text())[-1]["chains"] == []


def test_signatures_with_the_longest_salt_verify_too(files: dict[str, Path]) -> None:
    # moto's emulated KMS signs PSS with the longest salt; KMS with 32 bytes: both are PSS.
    files["digests"].write_text(json.dumps(make_digests(valid(), salt=padding.PSS.MAX_LENGTH)))
    assert verify(files)[0] == 0


def test_events_cut_from_a_chains_end_are_a_digest_mismatch(files: dict[str, Path]) -> None:
    # The chain's last event removed: the rest still links, the chain checks alone see nothing.
    events = [event for event in valid() if not (event["chain"] == CHAIN and event["seq"] == 5)]
    write(files["events"], events)
    (problem,) = problems(files)
    assert problem["kind"] == "digest-mismatch" and problem["chain"] == CHAIN
    assert problem["period"] == f"{ENDS[1]}..{ENDS[2]}"
    assert "records 1 events up to seq 5" in problem["detail"] and "ends at seq 4" in problem["detail"]
    assert "cut from the end" in problem["detail"]


def test_events_cut_within_a_period_are_a_digest_mismatch(files: dict[str, Path]) -> None:
    # The last two events of the registry's chain (seq 2 and 3, one in each of two periods) gone.
    write(
        files["events"],
        [event for event in valid() if not (event["chain"] == OTHER_CHAIN and event["seq"] > 1)],
    )
    found = problems(files)
    assert [(p["kind"], p["chain"]) for p in found] == [("digest-mismatch", OTHER_CHAIN)] * 2
    assert "records 2 events up to seq 2" in found[0]["detail"] and "has 1 up to seq 1" in found[0]["detail"]


def test_a_chain_left_out_is_a_digest_mismatch_in_each_period_it_moved(files: dict[str, Path]) -> None:
    write(files["events"], [event for event in valid() if event["chain"] != OTHER_CHAIN])
    found = problems(files)
    assert {(p["kind"], p["chain"], p["period"]) for p in found} == {
        ("digest-mismatch", OTHER_CHAIN, f"the beginning..{ENDS[0]}"),
        ("digest-mismatch", OTHER_CHAIN, f"{ENDS[0]}..{ENDS[1]}"),
    }
    assert all("chain left out" in p["detail"] for p in found)


def test_a_whole_chain_rewritten_consistently_is_a_digest_mismatch(files: dict[str, Path]) -> None:
    # Someone who can write the table changes an event and re-links everything after it: every
    # hash holds and every prevHash links, but the head is not the one the digests signed.
    forged = chain_events(CHAIN, 5, prefix="c")
    forged[1]["detail"] = "approved by mallory"
    relinked: list[dict[str, Any]] = []
    for event in forged:
        event = {k: v for k, v in event.items() if k != "hash"}
        if relinked:
            event["prevHash"] = relinked[-1]["hash"]
        relinked.append(sealed(event))
    others = [event for event in valid() if event["chain"] != CHAIN]
    write(files["events"], sorted(relinked + others, key=lambda event: event["at"]))
    found = problems(files)
    assert found and {p["kind"] for p in found} == {"digest-mismatch"}
    assert {p["chain"] for p in found} == {CHAIN}
    assert all("rewritten" in p["detail"] for p in found)


def test_an_inserted_chain_is_a_digest_mismatch(files: dict[str, Path]) -> None:
    fake = chain_events("CONNECTION#ffffffff-0000-0000-0000-000000000000", 1, prefix="f")
    fake[0] = sealed({**{k: v for k, v in fake[0].items() if k != "hash"}, "at": "2026-12-02T10:00:03.500Z"})
    write(files["events"], sorted(valid() + fake, key=lambda event: event["at"]))
    (problem,) = problems(files)
    assert problem["kind"] == "digest-mismatch" and problem["chain"] == fake[0]["chain"]
    assert problem["period"] == f"{ENDS[0]}..{ENDS[1]}" and "inserted" in problem["detail"]


def test_a_digest_removed_from_the_middle_is_a_missing_digest(files: dict[str, Path]) -> None:
    rewrite(files["digests"], lambda digests: digests[:1] + digests[2:])
    found = problems(files)
    assert [(p["kind"], p["period"]) for p in found] == [("missing-digest", f"{ENDS[1]}..{ENDS[2]}")]
    assert "previousHash" in found[0]["detail"]


def test_a_changed_digest_is_a_bad_signature(files: dict[str, Path]) -> None:
    def change(digests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        digests[0]["chains"][0]["count"] += 1
        digests[0]["eventCount"] += 1
        return digests

    rewrite(files["digests"], change)
    found = problems(files)
    assert ("bad-signature", f"the beginning..{ENDS[0]}") in {(p["kind"], p["period"]) for p in found}
    assert any("changed after it was signed" in p["detail"] for p in found)


def test_a_digest_rehashed_but_not_resigned_is_a_bad_signature(files: dict[str, Path]) -> None:
    def forge(digests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        digest = digests[2]
        digest["chains"] = [entry for entry in digest["chains"] if entry["chain"] != CHAIN]
        digest["hash"] = doc_digest_hash(digest)
        digests[3]["previousHash"] = digest["hash"]  # the chain of digests made to agree, too
        return digests

    rewrite(files["digests"], forge)
    write(
        files["events"], [event for event in valid() if not (event["chain"] == CHAIN and event["seq"] == 5)]
    )
    kinds = {(p["kind"], p["period"]) for p in problems(files)}
    assert ("bad-signature", f"{ENDS[1]}..{ENDS[2]}") in kinds
    assert ("bad-signature", f"{ENDS[2]}..{ENDS[3]}") in kinds  # its previousHash changed: not signed


def test_digests_signed_by_another_key_are_bad_signatures(files: dict[str, Path]) -> None:
    rewrite(files["digests"], lambda digests: [sign(digest, OTHER_KEY) for digest in digests])
    found = problems(files)
    assert [p["kind"] for p in found] == ["bad-signature"] * 4
    assert all("does not verify" in p["detail"] for p in found)


def test_events_after_the_last_digest_are_a_note_and_a_problem_only_with_strict(
    files: dict[str, Path],
) -> None:
    rewrite(files["digests"], lambda digests: digests[:2])
    code, text = verify(files, as_json=False)
    assert code == 0, text
    assert f"note: 1 events after the last digest ({ENDS[1]}): not covered yet" in text
    assert "1 events not covered by a digest" in text
    (problem,) = problems(files, "--strict")
    assert problem["kind"] == "uncovered"


def test_the_digests_need_their_key(files: dict[str, Path]) -> None:
    result = run("audit", "verify", str(files["events"]), "--digests", str(files["digests"]))
    assert result.exit_code == 2 and "--digests and --public-key go together" in result.stderr
    result = run("audit", "verify", str(files["events"]), "--public-key", str(files["key"]))
    assert result.exit_code == 2


def test_unreadable_digests_or_key_are_usage_errors(files: dict[str, Path]) -> None:
    files["digests"].write_text('{"not": "a list"}')
    code = run("audit", "verify", str(files["events"]), "--digests", str(files["digests"]),
               "--public-key", str(files["key"]))  # fmt: skip
    assert code.exit_code == 2 and "not a JSON array of digests" in code.stderr
    files["digests"].write_text("[]")
    files["key"].write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    code = run("audit", "verify", str(files["events"]), "--digests", str(files["digests"]),
               "--public-key", str(files["key"]))  # fmt: skip
    assert code.exit_code == 2 and "not an RSA public key" in code.stderr


def test_the_digest_rule_matches_the_service(files: dict[str, Path]) -> None:
    """The CLI's own canonical form of a digest is docs/audit.md's (and copy() changes nothing)."""
    from acctconn.digests import digest_hash

    for digest in json.loads(files["digests"].read_text()):
        assert digest_hash(copy.deepcopy(digest)) == digest["hash"] == doc_digest_hash(digest)


def test_a_digest_whose_count_does_not_add_up_is_not_a_digest(files: dict[str, Path]) -> None:
    def change(digests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        digests[1]["eventCount"] += 1
        digests[1]["hash"] = doc_digest_hash(digests[1])
        return digests

    rewrite(files["digests"], change)
    found = problems(files)
    assert ("bad-signature", f"{ENDS[0]}..{ENDS[1]}") in {(p["kind"], p["period"]) for p in found}
    assert any("eventCount" in p["detail"] for p in found)
