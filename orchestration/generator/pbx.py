"""The PBX: turns a call's outcome into the legs of the telephony export.

Legs are decided here in the generic vocabulary; the generic format writes them as they are,
another format (`formats.py`: Asterisk CDR, Twilio call logs) renders each call's legs in its
own layout and ids. The random draws do not depend on the format, so every format of one seed
carries the same calls.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from .numbers import AREA_CODES, random_e164
from .output import TelephonyWriter, csv_line
from .world import Site, World

if TYPE_CHECKING:
    from .formats import CallFormat

STATUS_VARIANTS = {
    "no_answer": ("No Answer", "no-answer", "NO_ANSWER"),
    "answered": ("Answered", "ANSWERED"),
    "voicemail": ("Voicemail", "VOICEMAIL"),
    "abandoned": ("Abandoned", "ABANDONED"),
    "canceled": ("Canceled", "CANCELED"),
    "busy": ("Busy",),
    "failed": ("Failed",),
}
VARIANT_SHARE = 0.03  # statuses spelled another way
RING_GROUP_SHARE = 0.5  # queue calls that ring several agents (parent + child legs)
RINGING_STATUSES = ("answered", "voicemail", "no_answer", "abandoned", "canceled")


@dataclass(slots=True)
class Leg:
    """One row of the generic export, as instants (rendered at write time)."""

    call_id: str
    parent_call_id: str
    direction: str
    started: datetime
    answered: datetime | None
    ended: datetime
    caller: str
    callee: str
    status: str
    queue: str = ""
    ivr: str = ""
    agent: str = ""
    disposition: str = ""
    talk: int = 0


@dataclass(slots=True)
class Placed:
    """What the PBX recorded for one logical call."""

    call_id: str
    start: datetime
    status: str
    wait: float  # seconds until the caller hung up, or voicemail picked up
    talk: int
    answer_leg: str  # the leg a person answered ('' if none)
    answer_leg_start: datetime
    dialed: str
    pbx_id: str = ""  # the call's id as the export writes it (what a CTI stamps on the CRM)
    answer_pbx_id: str = ""  # the same for the answering leg


class Pbx:
    """Places calls: decides their timing and legs, and writes them to the daily files."""

    def __init__(
        self,
        world: World,
        rng: random.Random,
        writer: TelephonyWriter,
        call_format: CallFormat | None = None,
    ) -> None:
        self.world = world
        self.rng = rng
        self.writer = writer
        self.call_format = call_format  # None: the generic format
        self.calls = 0
        self._numbers: dict[tuple[int, date], int] = {}

    # -- calls ---------------------------------------------------------------------------------
    def inbound(
        self,
        instant: datetime,
        site: Site,
        caller: str,
        dialed: str,
        ivr: str,
        queue: str,
        outcome: str,
        disposition: str,
    ) -> Placed:
        """One inbound call: a single leg, or a ring group (parent leg + one leg per agent).

        `outcome` is a generic status, or `short_abandon` (hung up before the threshold).
        """
        rng = self.rng
        if outcome == "short_abandon":
            ivr = ""
        pre, answer, end, talk = self._inbound_timeline(outcome, ivr)
        status = "abandoned" if outcome == "short_abandon" else outcome
        call_id = self._new_call_id(site, instant)
        answered_at = instant + timedelta(seconds=answer) if answer is not None else None
        wait = answer if status == "voicemail" and answer is not None else end
        parent = Leg(
            call_id=call_id,
            parent_call_id="",
            direction="inbound",
            started=instant,
            answered=answered_at,
            ended=instant + timedelta(seconds=end),
            caller=caller,
            callee=dialed,
            status=status,
            queue=queue,
            ivr=ivr,
            disposition=disposition,
            talk=talk,
        )
        placed = Placed(call_id, instant, status, wait, talk, "", instant, dialed)
        style = self._style()
        rings = instant + timedelta(seconds=pre)
        ring_group = (
            queue
            and outcome != "short_abandon"
            and status in RINGING_STATUSES
            and end - pre > 3
            and rng.random() < RING_GROUP_SHARE
        )
        if not ring_group:
            if status == "answered":
                parent.agent = rng.choice(site.agents)
                placed.answer_leg = call_id
            self._emit(site, style, "inbound", [parent], placed, rings)
            return placed
        children = self._ring_group(site, parent, pre, placed)
        self._emit(site, style, "inbound", [parent, *children], placed, rings)
        return placed

    def outbound(
        self, instant: datetime, site: Site, dialed: str, outcome: str, disposition: str
    ) -> Placed:
        """One outbound leg from a business line.

        `outcome`: connected (talk >= the connected minimum), short (answered, less talk),
        no_answer, voicemail or busy.
        """
        rng = self.rng
        minimum = int(self.world.min_connected_talk_seconds)
        answer: float | None = None
        talk = 0
        if outcome in ("connected", "short"):
            answer = rng.uniform(4, 20)
            if outcome == "connected":
                talk = max(minimum, int(rng.lognormvariate(math.log(150), 0.8)))
            else:
                talk = rng.randint(1, max(1, minimum - 1))
            end, status = answer + talk, "answered"
        elif outcome == "voicemail":
            answer = rng.uniform(18, 30)
            end, status = answer + rng.uniform(10, 45), "voicemail"
        elif outcome == "busy":
            end, status = rng.uniform(1, 4), "busy"
        else:
            end, status = rng.uniform(20, 45), "no_answer"
        call_id = self._new_call_id(site, instant)
        leg = Leg(
            call_id=call_id,
            parent_call_id="",
            direction="outbound",
            started=instant,
            answered=instant + timedelta(seconds=answer) if answer is not None else None,
            ended=instant + timedelta(seconds=end),
            caller=rng.choice(site.lines),
            callee=dialed,
            status=status,
            agent=rng.choice(site.agents),
            disposition=disposition,
            talk=talk,
        )
        placed = Placed(call_id, instant, status, end, talk, call_id, instant, dialed)
        self._emit(site, self._style(), "outbound", [leg], placed)
        return placed

    def internal(self, instant: datetime, site: Site) -> None:
        """Extension to extension between two agents (internal by its numbers)."""
        rng = self.rng
        caller, callee = rng.sample(range(len(site.agents)), 2)
        answered = rng.random() < 0.85
        ring = rng.uniform(2, 10)
        talk = int(rng.lognormvariate(math.log(90), 0.9)) + 1 if answered else 0
        end = ring + talk if answered else ring + rng.uniform(10, 25)
        leg = Leg(
            call_id=self._new_call_id(site, instant),
            parent_call_id="",
            direction="inbound",  # the generic format knows inbound and outbound only
            started=instant,
            answered=instant + timedelta(seconds=ring) if answered else None,
            ended=instant + timedelta(seconds=end),
            caller=site.extensions[caller],
            callee=site.extensions[callee],
            status="answered" if answered else "no_answer",
            agent=site.agents[callee],
            talk=talk,
        )
        self._emit(site, self._style(), "internal", [leg])

    # -- timing and ring groups ------------------------------------------------------------------
    def _inbound_timeline(self, outcome: str, ivr: str) -> tuple[float, float | None, float, int]:
        """(seconds before ringing, answer offset or None, end offset, talk seconds)."""
        rng = self.rng
        pre = rng.uniform(7, 25) if ivr else rng.uniform(0.5, 3)
        threshold = self.world.short_abandon_seconds
        if outcome == "answered":
            answer = pre + max(2.5, rng.lognormvariate(math.log(12), 0.6))
            talk = min(5400, max(3, int(rng.lognormvariate(math.log(150), 0.9))))
            return pre, answer, answer + talk, talk
        if outcome == "voicemail":
            answer = pre + rng.uniform(18, 35)
            return pre, answer, answer + rng.uniform(6, 90), 0
        if outcome == "short_abandon":
            return 0.0, None, rng.uniform(0.8, max(1.0, threshold - 0.3)), 0
        if outcome == "abandoned":
            return pre, None, pre + max(threshold + 0.5, rng.lognormvariate(math.log(25), 0.8)), 0
        if outcome == "no_answer":
            return pre, None, pre + rng.uniform(20, 60), 0
        if outcome == "canceled":
            return pre, None, pre + rng.uniform(2, 40), 0
        if outcome == "busy":
            return pre, None, rng.uniform(1, 4), 0
        return pre, None, rng.uniform(0.1, 2), 0  # failed

    def _ring_group(self, site: Site, parent: Leg, pre: float, placed: Placed) -> list[Leg]:
        """Child legs: agents rung together; at most one answers, the others stop ringing."""
        rng = self.rng
        picked = rng.sample(range(len(site.agents)), rng.choice((2, 2, 3)))
        answering = rng.randrange(len(picked)) if parent.status == "answered" else -1
        children = []
        for position, agent_index in enumerate(picked):
            child = Leg(
                call_id=f"{parent.call_id}-L{position + 2}",
                parent_call_id=parent.call_id,
                direction="inbound",
                started=parent.started + timedelta(seconds=pre + rng.uniform(0.05, 1.5)),
                answered=None,
                ended=parent.ended,
                caller=parent.caller,
                callee=site.extensions[agent_index],
                status="canceled",
                queue=parent.queue,
                agent=site.agents[agent_index],
            )
            if position == answering:
                child.answered, child.status = parent.answered, "answered"
                child.disposition, child.talk = parent.disposition, parent.talk
                parent.agent = child.agent
                placed.answer_leg, placed.answer_leg_start = child.call_id, child.started
            elif parent.answered is not None:  # another agent answered, or voicemail did
                child.ended = parent.answered
                child.status = "canceled" if answering >= 0 else "no_answer"
            elif parent.status == "no_answer":
                child.status = "no_answer"
            children.append(child)
        return children

    # -- writing ----------------------------------------------------------------------------------
    def _new_call_id(self, site: Site, instant: datetime) -> str:
        """`<site>-<local yyyymmdd>-<nnnnnn>`; child legs add `-L2`, `-L3`, ..."""
        day = site.clock.local(instant).date()
        number = self._numbers.get((site.index, day), 0) + 1
        self._numbers[(site.index, day)] = number
        self.calls += 1
        return f"{site.name}-{day:%Y%m%d}-{number:06d}"

    def _style(self) -> str:
        """How a call's timestamps are written: local without offset, with offset, or UTC."""
        roll = self.rng.random()
        return "local" if roll < 0.88 else "offset" if roll < 0.96 else "utc"

    def _status_text(self, status: str) -> str:
        if self.rng.random() < VARIANT_SHARE:
            return self.rng.choice(STATUS_VARIANTS[status])
        return status

    def _emit(
        self,
        site: Site,
        style: str,
        kind: str,
        legs: list[Leg],
        placed: Placed | None = None,
        rings: datetime | None = None,
    ) -> None:
        """Write one call's legs (parent first) in the export's format; `kind` is inbound,
        outbound or internal, `rings` when an inbound call starts ringing an agent."""
        fmt = self.call_format
        if fmt is None:
            for leg in legs:
                self._write(site, style, leg)
            refs = {leg.call_id: leg.call_id for leg in legs}
        else:
            for leg in legs:  # the generic rows' draws, so that every format has the same calls
                if leg.status == "answered":
                    self.rng.random()
                self._status_text(leg.status)
            refs = fmt.call(site, kind, legs, rings or legs[0].started)
        if placed is not None:
            placed.pbx_id = refs[placed.call_id]
            placed.answer_pbx_id = refs.get(placed.answer_leg, placed.pbx_id)

    def _write(self, site: Site, style: str, leg: Leg) -> None:
        clock = site.clock
        if leg.status == "answered":
            talk = str(leg.talk) if self.rng.random() < 0.95 else ""  # optional column
        else:
            talk = "0"
        fields = (
            leg.call_id,
            leg.parent_call_id,
            leg.direction,
            clock.render(leg.started, style),
            clock.render(leg.answered, style) if leg.answered else "",
            clock.render(leg.ended, style),
            leg.caller,
            leg.callee,
            self._status_text(leg.status),
            leg.queue,
            leg.ivr,
            leg.agent,
            leg.disposition,
            site.name,
            talk,
        )
        day = clock.local(leg.started).date()
        self.writer.add(day, leg.started, leg.call_id, site.index, csv_line(fields))


def malformed_lines(site: Site, day: date, rng: random.Random) -> tuple[list[str], str]:
    """Rows the ingest must reject, one per reason, and a truncated last line."""
    start = datetime.combine(day, time(10, 30, 0, 250000))

    def stamp(at: datetime) -> str:
        return at.isoformat(timespec="microseconds")

    def row(k: int, **changes: str) -> str:
        fields = {
            "call_id": f"{site.name}-{day:%Y%m%d}-bad{k}",
            "parent_call_id": "",
            "direction": "inbound",
            "started_at": stamp(start),
            "answered_at": stamp(start + timedelta(seconds=9)),
            "ended_at": stamp(start + timedelta(seconds=95)),
            "from_number": random_e164(rng, rng.choice(AREA_CODES)),
            "to_number": site.lines[0],
            "status": "answered",
            "queue": "",
            "ivr_selection": "",
            "agent_id": site.agents[0],
            "disposition": "",
            "site": site.name,
            "talk_seconds": "86",
        }
        fields.update(changes)
        return csv_line(list(fields.values()))

    missed = {"answered_at": "", "status": "no_answer", "talk_seconds": "0"}
    bad = [
        row(1).rsplit(",", 2)[0],  # wrong field count
        row(2, status="exploded"),  # unknown status
        row(3, started_at=f"{day.isoformat()}T25:61:00"),  # unparseable timestamp
        row(4, ended_at=stamp(start - timedelta(minutes=5)), **missed),  # ends before it starts
        row(5, talk_seconds="-42"),  # negative duration
        row(6, answered_at=stamp(start + timedelta(seconds=200))),  # answered after the end
    ]
    gap = site.clock.dst_gap_wall_time(day.year)
    if gap is not None:  # a local time that does not exist
        bad.append(
            row(7, started_at=stamp(gap), ended_at=stamp(gap + timedelta(seconds=40)), **missed)
        )
    whole = row(8)
    return bad, whole[: int(len(whole) * 0.55)]
