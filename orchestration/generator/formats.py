"""The real telephony formats of `ringledger generate --telephony-format asterisk|twilio`.

The PBX (`pbx.py`) decides every call's legs in the generic vocabulary and hands each call,
parent leg first, to one of these renderers; so the three formats of one seed carry the same
calls, callers, times, outcomes and CRM links (docs/formats.md, "One sample, three formats").

Both formats write whole seconds. A call's times are written as its start (floored to the
second) plus the floored offset of each instant from the start, and an answered leg ends its
talk seconds after its answer: every wait compared with a whole-second threshold (the short
abandon) falls on the same side as in the generic export, and talk seconds are exact.

- **asterisk** (`telephony/Master_YYYY-MM-DD.csv`): `cdr_csv` with `loguniqueid`,
  `loguserfield` and `newcdrcolumns`, 21 columns, no header. One row per leg of the call (all
  rows of a call share the caller channel's `uniqueid`, which is also the `linkedid`; the
  `sequence` numbers them); times in the site's clock (`telephony_clock`), without offset;
  `uniqueid` `<epoch of the start>.<n>`. `userfield` carries `site=`, `ivr=`, `queue=` and
  `disposition=`. Contexts are those of the default `telephony_sources` row: `from-pstn`
  (inbound), `from-internal` (outbound) and `ext-local` (extension to extension: neither).
- **twilio** (`telephony/twilio/<site>/calls_YYYY-MM-DD.csv`): the Calls resource as CSV, one
  folder per site (a Twilio log has no site column: the `telephony_sources` row of the folder
  names it). An inbound call is a parent leg `completed` by the IVR (or `no-answer`, `busy`,
  `canceled`, `failed` when nothing picked up) with `outbound-dial` children: the agents rung,
  the agent who answered (completed with `Duration` = talk seconds) and a voicemail
  (`AnsweredBy` `machine_end_beep`). Callbacks are `outbound-api` legs. RFC 2822 times in GMT.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from typing import Protocol

from .numbers import AREA_CODES, random_e164
from .output import TelephonyLayout, TelephonyWriter, csv_line
from .pbx import Leg
from .world import Site

_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1)

ASTERISK_LAYOUT = TelephonyLayout(None, lambda day, _site: f"Master_{day.isoformat()}.csv")
INBOUND_CONTEXT = "from-pstn"
OUTBOUND_CONTEXT = "from-internal"
INTERNAL_CONTEXT = "ext-local"  # in neither context list of the default telephony_sources row

TWILIO_HEADER = (
    "Sid", "ParentCallSid", "DateCreated", "AccountSid", "From", "To", "Direction", "Status",
    "StartTime", "EndTime", "Duration", "AnsweredBy",
)  # fmt: skip
TWILIO_LAYOUT = TelephonyLayout(
    TWILIO_HEADER, lambda day, site: f"twilio/{site}/calls_{day.isoformat()}.csv", per_site=True
)
TWILIO_STATUS = {
    "canceled": "canceled",
    "no_answer": "no-answer",
    "busy": "busy",
    "failed": "failed",
}
MACHINE = "machine_end_beep"


class CallFormat(Protocol):
    layout: TelephonyLayout

    def call(self, site: Site, kind: str, legs: list[Leg], rings: datetime) -> dict[str, str]:
        """Write one call (parent leg first); returns generic leg id -> the id a CTI stamps."""
        ...

    def malformed_lines(
        self, site: Site, day: date, rng: random.Random
    ) -> tuple[list[str], str]: ...


def call_format(name: str, writer: TelephonyWriter) -> CallFormat:
    if name == "asterisk":
        return AsteriskFormat(writer)
    if name == "twilio":
        return TwilioFormat(writer)
    raise ValueError(f"unknown telephony format {name!r}")


class _Seconds:
    """Whole-second times of one call: its floored start plus floored offsets from it."""

    def __init__(self, started: datetime) -> None:
        self.started = started
        self.base = started.replace(microsecond=0)

    def at(self, instant: datetime) -> datetime:
        return self.base + ((instant - self.started) // _SECOND) * _SECOND

    def end(self, leg: Leg) -> datetime:
        """An answered leg ends its talk seconds after its answer; others at their end."""
        if leg.status == "answered" and leg.answered is not None:
            return self.at(leg.answered) + leg.talk * _SECOND
        return self.at(leg.ended)


def _extension(site: Site, agent: str) -> str:
    return site.extensions[site.agents.index(agent)] if agent in site.agents else ""


def _display_name(agent: str) -> str:
    """`rené.dubois` -> `René Dubois` (the agent's caller id name)."""
    return " ".join(part.capitalize() for part in agent.split("."))


# -- Asterisk ---------------------------------------------------------------------------------


class AsteriskFormat:
    """`cdr_csv` Master.csv rows, 21 columns (base, uniqueid, userfield, newcdrcolumns)."""

    layout = ASTERISK_LAYOUT

    def __init__(self, writer: TelephonyWriter) -> None:
        self.writer = writer
        self._channels = 0  # the PBX's channel counter (channel name suffixes, uniqueids)
        self._sequence = 0  # the CDR sequence counter
        self._failed = 0

    def _channel(self, name: str) -> str:
        self._channels += 1
        return f"PJSIP/{name}-{self._channels:08x}"

    def call(self, site: Site, kind: str, legs: list[Leg], rings: datetime) -> dict[str, str]:
        parent = legs[0]
        seconds = _Seconds(parent.started)
        self._channels += 1
        epoch = int((seconds.base - _EPOCH).total_seconds())
        uniqueid = f"{epoch}.{self._channels}"
        if kind == "inbound":
            caller_channel = self._channel(f"trunk-{site.name}")
        elif kind == "internal":
            caller_channel = self._channel(parent.caller)
        else:
            caller_channel = self._channel(_extension(site, parent.agent) or parent.caller)
        agent_channels: dict[str, str] = {}

        def agent_channel(leg: Leg) -> str:
            if kind == "outbound":
                return self._channel(f"trunk-{site.name}")
            if leg.agent not in agent_channels:
                agent_channels[leg.agent] = self._channel(_extension(site, leg.agent))
            return agent_channels[leg.agent]

        for position, leg in enumerate(legs):
            start = seconds.at(leg.started)
            if position:  # a dialed leg starts after the caller's (the parent stays first)
                start = max(start, seconds.base + _SECOND)
            end = seconds.end(leg)
            answer = seconds.at(leg.answered) if leg.answered is not None else None
            disposition, dstchannel, lastapp, lastdata = self._outcome(
                site, kind, leg, position, agent_channel
            )
            if disposition == "ANSWERED" and answer is None:
                answer = start  # an application (IVR, queue, greeting) answered at once
            if kind == "inbound":
                context, clid = INBOUND_CONTEXT, f'"{leg.caller}" <{leg.caller}>'
            elif kind == "outbound":
                name = _display_name(leg.agent)
                context, clid = OUTBOUND_CONTEXT, f'"{name}" <{leg.caller}>'
            else:
                caller_agent = site.agents[site.extensions.index(leg.caller)]
                context, clid = INTERNAL_CONTEXT, f'"{_display_name(caller_agent)}" <{leg.caller}>'
            pairs = [("site", site.name), ("ivr", leg.ivr), ("queue", leg.queue)]
            pairs.append(("disposition", leg.disposition))
            userfield = ";".join(f"{key}={value}" for key, value in pairs if value)
            self._sequence += 1
            fields = (
                "",  # accountcode
                leg.caller,
                leg.callee,
                context,
                clid,
                caller_channel,
                dstchannel,
                lastapp,
                lastdata,
                self._clock(site, start),
                self._clock(site, answer) if answer is not None else "",
                self._clock(site, end),
                str(int((end - start) / _SECOND)),
                str(int((end - answer) / _SECOND)) if answer is not None else "0",
                disposition,
                "DOCUMENTATION",  # amaflags
                uniqueid,
                userfield,
                "",  # peeraccount
                uniqueid,  # linkedid: the caller channel's uniqueid
                str(self._sequence),
            )
            day = site.clock.local(start).date()
            self.writer.add(day, leg.started, f"{uniqueid}#{self._sequence}", site.index,
                            csv_line(fields))  # fmt: skip
        return {leg.call_id: uniqueid for leg in legs}

    def _outcome(self, site: Site, kind: str, leg: Leg, position: int, agent_channel):
        """(disposition, dstchannel, lastapp, lastdata) of a leg, by the spec's status table:
        VoiceMail lastapp; ANSWERED with a dstchannel (a person) or without (an application);
        NO ANSWER, BUSY, FAILED/CONGESTION."""
        status = leg.status
        dial = "Queue" if leg.queue else "Dial"
        ext = _extension(site, leg.agent)
        if kind == "outbound":
            digits = "".join(ch for ch in leg.callee if ch.isdigit() or ch == "+")
            data = f"PJSIP/{digits}@trunk-{site.name},60"
        elif leg.queue:
            data = f"{leg.queue},t,,,300"
        else:
            data = f"PJSIP/{ext or leg.callee},30,tT"
        if status == "voicemail":
            channel = agent_channel(leg) if kind == "outbound" else ""
            return "ANSWERED", channel, "VoiceMail", f"{site.extensions[0]}@{site.name},u"
        if status == "answered":
            return "ANSWERED", agent_channel(leg), dial, data
        if status in ("abandoned", "canceled"):
            if position:  # an agent's phone stopped ringing when the caller hung up
                return "NO ANSWER", agent_channel(leg), dial, data
            if leg.queue:
                return "ANSWERED", "", "Queue", data
            if leg.ivr:
                return "ANSWERED", "", "BackGround", f"custom/{site.name}-main-menu"
            return "ANSWERED", "", "Playback", f"custom/{site.name}-welcome"
        channel = agent_channel(leg) if leg.agent or kind == "outbound" else ""
        if status == "no_answer":
            return "NO ANSWER", channel, dial, data
        if status == "busy":
            return "BUSY", channel, "Dial", data
        self._failed += 1
        return ("CONGESTION" if self._failed % 3 == 0 else "FAILED"), "", "Dial", data

    @staticmethod
    def _clock(site: Site, instant: datetime) -> str:
        if site.telephony_clock == "local":
            instant = site.clock.local(instant)
        return instant.strftime("%Y-%m-%d %H:%M:%S")

    def malformed_lines(self, site: Site, day: date, rng: random.Random) -> tuple[list[str], str]:
        """Rows the ingest must reject, one per reason, and a truncated last line."""
        start = datetime.combine(day, time(10, 30, 0))
        stamp = "%Y-%m-%d %H:%M:%S"
        epoch = int((site.clock.to_utc(start) - _EPOCH).total_seconds())

        def row(k: int, **changes: str) -> list[str]:
            fields = {
                "accountcode": "",
                "src": random_e164(rng, rng.choice(AREA_CODES)),
                "dst": site.lines[0],
                "dcontext": INBOUND_CONTEXT,
                "clid": "",
                "channel": f"PJSIP/trunk-{site.name}-bad{k}",
                "dstchannel": f"PJSIP/{site.extensions[0]}-bad{k}",
                "lastapp": "Dial",
                "lastdata": f"PJSIP/{site.extensions[0]},30,tT",
                "start": start.strftime(stamp),
                "answer": (start + 9 * _SECOND).strftime(stamp),
                "end": (start + 95 * _SECOND).strftime(stamp),
                "duration": "95",
                "billsec": "86",
                "disposition": "ANSWERED",
                "amaflags": "DOCUMENTATION",
                "uniqueid": f"{epoch}.{900000 + k}",
                "userfield": f"site={site.name}",
                "peeraccount": "",
                "linkedid": f"{epoch}.{900000 + k}",
                "sequence": str(900000 + k),
            }
            fields["clid"] = f'"{fields["src"]}" <{fields["src"]}>'
            fields.update(changes)
            return list(fields.values())

        missed = {"answer": "", "billsec": "0", "disposition": "NO ANSWER", "dstchannel": ""}
        bad = [
            csv_line(
                row(1, end=(start - 5 * 60 * _SECOND).strftime(stamp), **missed)
            ),  # ends first
            csv_line(row(2)[:-1]),  # wrong field count (20 of 21)
            csv_line(row(3, disposition="EXPLODED")),  # unknown disposition
            csv_line(row(4, start=f"{day.isoformat()} 25:61:00")),  # unparseable timestamp
            csv_line(row(5, billsec="-42")),  # negative duration
            csv_line(row(6, answer=(start + 200 * _SECOND).strftime(stamp))),  # answered after end
            csv_line(row(7, userfield="site=atlantis")),  # a site that is not in the seeds
        ]
        gap = site.clock.dst_gap_wall_time(day.year)
        if gap is not None and site.telephony_clock == "local":  # a local time that does not exist
            gap = gap.replace(microsecond=0)
            bad.append(
                csv_line(
                    row(
                        8,
                        start=gap.strftime(stamp),
                        end=(gap + 40 * _SECOND).strftime(stamp),
                        **missed,
                    )
                )
            )
        whole = csv_line(row(9))
        return bad, whole[: int(len(whole) * 0.55)]


# -- Twilio -----------------------------------------------------------------------------------


def _sid(prefix: str, text: str) -> str:
    return prefix + hashlib.md5(text.encode("utf-8")).hexdigest()


def _rfc2822(instant: datetime) -> str:
    return format_datetime(instant.replace(tzinfo=UTC))


class TwilioFormat:
    """Calls resource rows, one CSV per site and day."""

    layout = TWILIO_LAYOUT

    def __init__(self, writer: TelephonyWriter) -> None:
        self.writer = writer

    def call(self, site: Site, kind: str, legs: list[Leg], rings: datetime) -> dict[str, str]:
        parent = legs[0]
        seconds = _Seconds(parent.started)
        account = _sid("AC", f"ringledger-sample:{site.name}")
        sids = {leg.call_id: _sid("CA", leg.call_id) for leg in legs}
        parent_sid = sids[parent.call_id]
        rows: list[tuple[datetime, str, list[str]]] = []

        def add(sid: str, parent_sid: str, leg: Leg, direction: str, status: str,
                start: datetime, end: datetime, duration: int, callee: str = "",
                answered_by: str = "") -> None:  # fmt: skip
            fields = [
                sid, parent_sid, _rfc2822(start), account, leg.caller, callee or leg.callee,
                direction, status, _rfc2822(start), _rfc2822(end), str(duration), answered_by,
            ]  # fmt: skip
            rows.append((start, sid, fields))

        start = seconds.at(parent.started)
        end = seconds.end(parent)
        if kind == "outbound":
            status, duration, machine = TWILIO_STATUS.get(parent.status, "completed"), 0, ""
            if parent.status == "answered":
                duration = parent.talk
            elif parent.status == "voicemail" and parent.answered is not None:
                duration, machine = int((end - seconds.at(parent.answered)) / _SECOND), MACHINE
            add(parent_sid, "", parent, "outbound-api", status, start, end, duration,
                answered_by=machine)  # fmt: skip
        else:
            picked_up = parent.status in ("answered", "voicemail", "abandoned")
            status = "completed" if picked_up else TWILIO_STATUS[parent.status]
            duration = int((end - start) / _SECOND) if picked_up else 0
            add(parent_sid, "", parent, "inbound", status, start, end, duration)
            for child in legs[1:]:
                child_end = seconds.end(child)
                if child.status == "answered":
                    child_status, child_duration = "completed", child.talk
                else:
                    child_status, child_duration = TWILIO_STATUS[child.status], 0
                add(sids[child.call_id], parent_sid, child, "outbound-dial", child_status,
                    seconds.at(child.started), child_end, child_duration)  # fmt: skip
            if parent.status == "answered" and len(legs) == 1:  # the agent's leg
                sid = _sid("CA", f"{parent.call_id}/dial")
                callee = _extension(site, parent.agent) or parent.agent
                answer = seconds.at(parent.answered) if parent.answered else start
                ring = min(seconds.at(rings), answer)
                add(sid, parent_sid, parent, "outbound-dial", "completed", ring,
                    answer + parent.talk * _SECOND, parent.talk, callee=callee)  # fmt: skip
            if parent.status == "voicemail" and parent.answered is not None:  # the mailbox
                sid = _sid("CA", f"{parent.call_id}/voicemail")
                answer = seconds.at(parent.answered)
                add(sid, parent_sid, parent, "outbound-dial", "completed", answer, end,
                    int((end - answer) / _SECOND), answered_by=MACHINE)  # fmt: skip
        for row_start, sid, fields in rows:
            day = site.clock.local(row_start).date()
            self.writer.add(day, row_start, sid, site.index, csv_line(fields))
        return sids

    def malformed_lines(self, site: Site, day: date, rng: random.Random) -> tuple[list[str], str]:
        """Rows the ingest must reject, one per reason, and a truncated last line."""
        start = site.clock.to_utc(datetime.combine(day, time(10, 30, 0)))
        account = _sid("AC", f"ringledger-sample:{site.name}")

        def row(k: int, **changes: str) -> str:
            fields = {
                "Sid": _sid("CA", f"{site.name}-{day:%Y%m%d}-bad{k}"),
                "ParentCallSid": "",
                "DateCreated": _rfc2822(start),
                "AccountSid": account,
                "From": random_e164(rng, rng.choice(AREA_CODES)),
                "To": site.lines[0],
                "Direction": "outbound-api",
                "Status": "completed",
                "StartTime": _rfc2822(start),
                "EndTime": _rfc2822(start + 95 * _SECOND),
                "Duration": "86",
                "AnsweredBy": "",
            }
            fields.update(changes)
            return csv_line(list(fields.values()))

        bad = [
            row(1, EndTime=_rfc2822(start - 5 * 60 * _SECOND)),  # ends before it starts
            row(2).rsplit(",", 2)[0],  # wrong field count
            row(3, Status="exploded"),  # unknown status
            row(4, StartTime=f"{day:%a}, 32 Foo {day.year} 25:61:00 +0000"),  # unparseable
            row(5, Duration="-42"),  # negative duration
            row(6, Status="ringing"),  # not over yet
            row(7, Direction="sideways"),  # unknown direction
        ]
        whole = row(9)
        return bad, whole[: int(len(whole) * 0.55)]
