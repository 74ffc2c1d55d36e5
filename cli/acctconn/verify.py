"""Offline checks of an audit export: the hash chains of docs/audit.md, reimplemented here from
that page alone (the CLI never imports the service's code, so that the check is independent).

Pure functions, no I/O beyond the lines given::

    report = verify_lines(open("events.jsonl", "rb"))
    for problem in report.problems: ...

:func:`read_events` turns lines into events (a line that is not a JSON object is a problem),
:func:`check_chains` checks each chain, and :class:`Report` keeps, besides the problems, what
each chain looks like in the file (:class:`ChainSummary`: its first and last ``seq``, its head
``hash``, how many events): what the signed digests (not built yet) will be checked against,
and what anchors a chain that starts mid-way in the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: The kinds of problem, each named in docs/audit.md or the README.
MALFORMED = "malformed"  # a line that is not a JSON object, or a chain field of the wrong type
MODIFIED = "modified"  # an event's hash is not the SHA-256 of its canonical form
REMOVED = "removed"  # a gap in a chain's seq
INSERTED = "inserted"  # a second event at one seq, or a prevHash that does not link
REORDERED = "reordered"  # a chain out of seq order in the file, or at going backwards along seq
UNCHAINED = "unchained"  # no chain, seq or hash: written before the chains (a problem with --strict)

#: How far ``at`` may go backwards from one event to the next of its chain before it is a
#: problem: the chain's order is seq's, and two writers' clocks may differ by milliseconds
#: (docs/audit.md, "Chains").
CLOCK_SKEW = timedelta(seconds=2)

HASH = re.compile(r"[0-9a-f]{64}")


def canonical(event: Mapping[str, Any], unhashed: tuple[str, ...] = ("hash",)) -> bytes:
    """The bytes whose SHA-256 is an event's ``hash`` (docs/audit.md, "The canonical form"):
    without ``hash`` (and, for a digest, ``signature``: the ``unhashed`` fields) and null fields,
    keys sorted, no whitespace, UTF-8 without ``\\u`` escapes."""
    kept = {key: value for key, value in event.items() if key not in unhashed and value is not None}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


@dataclass(frozen=True)
class Problem:
    kind: str
    chain: str | None
    seq: int | None
    event_id: str | None
    detail: str
    line: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain": self.chain,
            "seq": self.seq,
            "eventId": self.event_id,
            "detail": self.detail,
            "line": self.line,
        }

    def __str__(self) -> str:
        where = [f"chain {self.chain}" if self.chain else "no chain"]
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.event_id is not None:
            where.append(f"eventId {self.event_id}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{self.kind}: {', '.join(where)}: {self.detail}"


@dataclass(frozen=True)
class Line:
    """One event of the file and where it is (1-based line number)."""

    number: int
    event: dict[str, Any]

    @property
    def event_id(self) -> str | None:
        value = self.event.get("eventId")
        return None if value is None else str(value)


@dataclass(frozen=True)
class Entry:
    """An event placed in its chain: its line, seq, stored hash and the hash of its content."""

    line: Line
    seq: int
    stored: Any  # the event's `hash` as written (None when absent)
    computed: str

    @property
    def event_id(self) -> str | None:
        return self.line.event_id

    @property
    def prev_hash(self) -> Any:
        return self.line.event.get("prevHash")

    @property
    def intact(self) -> bool:
        return self.stored == self.computed

    @property
    def effective(self) -> str:
        """The hash its successor must link to: the stored one, else (absent) its content's."""
        return self.computed if self.stored is None else str(self.stored)


@dataclass(frozen=True)
class ChainSummary:
    """A chain as the file has it: what a digest's head hash and count are checked against."""

    chain: str
    first_seq: int
    last_seq: int
    head_hash: str
    events: int

    @property
    def starts_mid_way(self) -> bool:
        """Its first event in the file is not seq 1 (an export of a period): only a digest
        anchors its start."""
        return self.first_seq > 1


@dataclass
class Report:
    events: int = 0
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: Events outside the chains (or without a hash): problems only with ``strict``.
    unchained: list[Problem] = field(default_factory=list)

    @property
    def chains_mid_way(self) -> int:
        return sum(1 for summary in self.chains.values() if summary.starts_mid_way)

    def failures(self, *, strict: bool = False) -> list[Problem]:
        """The problems that make the check fail, in line order."""
        found = self.problems + (self.unchained if strict else [])
        return sorted(found, key=lambda problem: (problem.line or 0, problem.kind))


def read_events(lines: Iterable[bytes | str]) -> tuple[list[Line], list[Problem]]:
    """Each non-blank line as an event; one that is not UTF-8 JSON of an object is a problem."""
    events: list[Line] = []
    problems: list[Problem] = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            problems.append(Problem(MALFORMED, None, None, None, "the line is not UTF-8", number))
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            problems.append(Problem(MALFORMED, None, None, None, "the line is not a JSON object", number))
            continue
        events.append(Line(number, value))
    return events, problems


def _place(line: Line, report: Report) -> tuple[str, Entry] | None:
    """The event's chain and entry; None (and the reason in ``report``) when it has no place."""
    event = line.event
    chain, seq, stored = event.get("chain"), event.get("seq"), event.get("hash")
    if chain is not None and not isinstance(chain, str):
        report.problems.append(
            Problem(MALFORMED, None, None, line.event_id, "chain is not a string", line.number)
        )
        return None
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        report.problems.append(
            Problem(MALFORMED, chain, None, line.event_id, "seq is not a positive integer", line.number)
        )
        return None
    missing = [name for name, value in (("chain", chain), ("seq", seq), ("hash", stored)) if value is None]
    if chain is None or seq is None:
        report.unchained.append(
            Problem(
                UNCHAINED,
                chain,
                seq,
                line.event_id,
                f"no {'/'.join(missing)} (written before the chains existed)",
                line.number,
            )
        )
        return None
    return chain, Entry(line, seq, stored, event_hash(event))


def check_chains(lines: Iterable[Line]) -> Report:
    """Every chain of ``lines`` (file order) checked against docs/audit.md's rules."""
    report = Report()
    chains: dict[str, list[Entry]] = {}
    for line in lines:
        report.events += 1
        placed = _place(line, report)
        if placed is not None:
            chains.setdefault(placed[0], []).append(placed[1])
    for chain, entries in chains.items():
        report.chains[chain] = _check_chain(chain, entries, report)
    return report


def verify_lines(lines: Iterable[bytes | str]) -> Report:
    """Read and check: the whole of ``acctconn audit verify`` but the output."""
    events, unreadable = read_events(lines)
    report = check_chains(events)
    report.problems[:0] = unreadable
    return report


def _problem(kind: str, chain: str, entry: Entry, detail: str, seq: int | None = None) -> Problem:
    return Problem(kind, chain, entry.seq if seq is None else seq, entry.event_id, detail, entry.line.number)


def _name(entry: Entry) -> str:
    return f"seq {entry.seq} (eventId {entry.event_id}, line {entry.line.number})"


def _check_chain(chain: str, entries: list[Entry], report: Report) -> ChainSummary:
    problems = report.problems

    # In the file, the chain's events come in ascending seq: the first place where not.
    highest = entries[0]
    for entry in entries[1:]:
        if entry.seq < highest.seq:
            problems.append(_problem(REORDERED, chain, entry, f"comes after {_name(highest)} in the file"))
            break
        highest = entry

    for entry in entries:
        if entry.stored is None:
            report.unchained.append(
                _problem(UNCHAINED, chain, entry, "no hash: only its successor's prevHash vouches for it")
            )
        elif not (isinstance(entry.stored, str) and HASH.fullmatch(entry.stored)):
            problems.append(_problem(MODIFIED, chain, entry, "hash is not 64 lowercase hex digits"))
        elif not entry.intact:
            problems.append(_problem(MODIFIED, chain, entry, "hash is not the SHA-256 of its canonical form"))

    # One event per seq: of two at one seq, the one the chain goes on from is kept.
    by_seq: dict[int, list[Entry]] = {}
    for entry in entries:
        by_seq.setdefault(entry.seq, []).append(entry)
    kept: list[Entry] = []
    for seq in sorted(by_seq):
        candidates = by_seq[seq]
        if len(candidates) > 1:
            following = by_seq.get(seq + 1)
            before = kept[-1] if kept and kept[-1].seq == seq - 1 else None
            genuine = _genuine(candidates, before, following[0] if following else None)
            for other in candidates:
                if other is not genuine:
                    detail = f"a second event at seq {seq}, besides {_name(genuine)}"
                    problems.append(_problem(INSERTED, chain, other, detail))
            candidates = [genuine]
        kept.append(candidates[0])

    first = kept[0]
    if first.seq == 1 and first.prev_hash is not None:
        problems.append(_problem(INSERTED, chain, first, "the first of its chain, yet it has a prevHash"))
    elif first.seq > 1 and first.prev_hash is None:
        problems.append(_problem(INSERTED, chain, first, "no prevHash, yet it is not the first of its chain"))

    for before, entry in zip(kept, kept[1:], strict=False):
        if entry.seq > before.seq + 1:
            gap = f"{before.seq + 1}" if entry.seq == before.seq + 2 else f"{before.seq + 1}..{entry.seq - 1}"
            problems.append(
                _problem(
                    REMOVED,
                    chain,
                    entry,
                    f"seq {gap} missing between eventId {before.event_id} and {entry.event_id}",
                    seq=before.seq + 1,
                )
            )
        elif entry.prev_hash != before.effective:
            if before.stored is None:
                detail = f"no hash, and its content is not what {_name(entry)} links to"
                problems.append(_problem(MODIFIED, chain, before, detail))
            elif before.intact or entry.prev_hash != before.computed:
                problems.append(
                    _problem(
                        INSERTED,
                        chain,
                        entry,
                        f"prevHash is not the hash of {_name(before)}: one of the two is not the chain's",
                    )
                )
            # else: only the predecessor's hash field was changed, reported as modified.
        went_back = _went_back(before.line.event.get("at"), entry.line.event.get("at"))
        if went_back:
            problems.append(
                _problem(REORDERED, chain, entry, f"at {went_back} is before that of {_name(before)}")
            )

    last = kept[-1]
    return ChainSummary(chain, first.seq, last.seq, last.effective, len(entries))


def _genuine(candidates: list[Entry], before: Entry | None, after: Entry | None) -> Entry:
    """Of events at one seq, the chain's: the one the next seq links to, else an intact one
    that links to the seq before, else an intact one, else the first in the file."""

    def rank(entry: Entry) -> tuple[bool, bool, bool]:
        linked = after is not None and after.prev_hash == entry.effective
        follows = before is not None and entry.prev_hash == before.effective
        return (not linked, not (entry.intact and follows), not entry.intact)

    return min(candidates, key=rank)  # min is stable: the first in the file on a tie


def _went_back(earlier: Any, later: Any) -> str | None:
    """``later`` (as text) when it is more than CLOCK_SKEW before ``earlier``; unreadable times
    are not compared (the hash covers them)."""
    try:
        before, after = datetime.fromisoformat(str(earlier)), datetime.fromisoformat(str(later))
        if after < before - CLOCK_SKEW:
            return str(later)
    except (ValueError, TypeError):
        return None
    return None
