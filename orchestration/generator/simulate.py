"""The simulation: who calls when, what happens next, and what that leaves in the exports.

One `random.Random(seed)` drives everything in one deterministic order: days are walked in
order, each day's events are popped from a heap keyed by (UTC instant, sequence number), and
every follow-up (a redial, a callback, an inbound recovery) is pushed as a later event.
Faults draw from a second stream, so a fault changes only the files it is about.
Rows stream to the writers: only pending events, one day of telephony rows and about two
weeks of CRM rows are held, plus a bounded pool of callers.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from .crm import Crm, Person
from .formats import call_format
from .numbers import (
    AREA_CODES,
    DIALED_FORMATS,
    TELEPHONY_FORMATS,
    invalid_number,
    pick_style,
    random_e164,
    spell,
)
from .output import TRACKING_HEADER, CrmWriter, TelephonyFaults, TelephonyWriter, write_csv
from .pbx import Pbx, Placed, malformed_lines
from .world import Site, World

Table = tuple[tuple[str, float], ...]

# Outcome mixes of an inbound call, in and out of business hours.
IN_HOURS: Table = (
    ("answered", 0.70),
    ("voicemail", 0.08),
    ("abandoned", 0.06),
    ("short_abandon", 0.02),
    ("no_answer", 0.06),
    ("canceled", 0.04),
    ("busy", 0.02),
    ("failed", 0.02),
)
AFTER_HOURS: Table = (
    ("answered", 0.12),
    ("voicemail", 0.45),
    ("abandoned", 0.09),
    ("short_abandon", 0.03),
    ("no_answer", 0.20),
    ("canceled", 0.06),
    ("busy", 0.02),
    ("failed", 0.03),
)
REDIAL_MISSES: Table = (("no_answer", 0.4), ("voicemail", 0.35), ("abandoned", 0.25))
CALLBACK_OUTCOMES: Table = (
    ("connected", 0.62),
    ("no_answer", 0.17),
    ("voicemail", 0.11),
    ("short", 0.05),
    ("busy", 0.05),
)
OTHER_OUTBOUND: Table = (
    ("connected", 0.55),
    ("no_answer", 0.25),
    ("voicemail", 0.15),
    ("busy", 0.05),
)
# Who calls in: the rest are people (new or returning).
CALLER_KINDS: Table = (
    ("unknown", 0.025),
    ("blocklisted", 0.006),
    ("spam", 0.015),
    ("invalid", 0.002),  # well under the 1% the number_normalization gate tolerates
)
DIRTY_SHARE = 0.03  # dirty-numbers fault: callers whose number the export mangled
WRONG_NUMBER_SHARE = 0.02  # people who misdialed
NOISE_ON_CALL_SHARE = 0.6  # spam and wrong numbers marked on the call (always on the CRM)
NOISE_VARIANTS = {
    "wrong_number": ("wrong_number", "Wrong Number", "wrong-number", "WRONG_NUMBER"),
    "spam": ("spam", "SPAM", "Spam"),
}
AGENT_NOTES = ("sale", "quote_sent", "support_resolved", "info_given")

# Follow-up of a reachable miss.
REDIAL_SHARE = 0.3  # the caller tries again within minutes
NEVER_CALLED_BACK = 0.09  # besides callers who got through on a redial
ON_CALL_SHARE = 0.45  # after-hours misses called back by the on-call agent that evening
CRM_ONLY_SHARE = 0.08  # callbacks made from a mobile, known to the CRM only
LOGGED_CALLBACK_SHARE = 0.85  # PBX callbacks the CTI logs as a CRM activity
RECOVERY_SHARE = 0.15  # the caller calls again later and gets through
# Probability that a missed caller becomes an opportunity, by minutes until first contact.
CONVERSION_BY_DELAY = (
    (5, 0.45),
    (15, 0.36),
    (30, 0.29),
    (60, 0.23),
    (120, 0.18),
    (240, 0.14),
    (1440, 0.10),
)
CONVERSION_LATE = 0.07
CONVERSION_NEVER = 0.05
INTENT_FACTOR = {"high_intent": 1.25, "service": 0.6, "informational": 0.8}

# Volume and its shape.
INBOUND_SHARE_OF_VOLUME = 0.72  # the rest of calls_per_day are follow-ups
WEEKDAY_VOLUME = {6: 0.45, 7: 0.25}  # ISO weekday -> share of a weekday's volume
HOLIDAY_VOLUME = 0.35
IN_HOURS_SHARE = 0.85
AFTER_HOURS_PROFILE = (1, 1, 1, 1, 1, 2, 4, 6, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7, 6, 5, 4, 3, 3)
FORMS_PER_CALL = 0.03  # forms by people who never call


def weighted(rng: random.Random, table: Table) -> str:
    """Draw a name from a (name, weight) table."""
    roll = rng.random() * sum(weight for _, weight in table)
    for name, weight in table:
        roll -= weight
        if roll < 0:
            return name
    return table[-1][0]


@dataclass(slots=True)
class Event:
    """Something to happen at an instant."""

    kind: str  # arrival, inbound, callback, crm_call, outbound, internal
    site: int
    person: Person | None = None
    number: str = ""  # the person's E.164 number involved
    to_number: str = ""
    ivr: str = ""
    queue: str = ""
    outcome: str = ""
    disposition: str = ""


class Simulator:
    """Generates the whole period into the writers."""

    def __init__(
        self,
        world: World,
        out_dir: Path,
        days: list[date],
        calls_per_day: int,
        seed: int,
        faults: frozenset[str],
        telephony_faults: TelephonyFaults,
        telephony_format: str = "generic",
    ) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(f"faults:{seed}")
        self.days = days
        self.last_day = days[-1]
        self.calls_per_day = calls_per_day
        self.faults = faults
        site0 = world.sites[0]
        site_names = [site.name for site in world.sites]
        self.telephony = TelephonyWriter(out_dir, days, telephony_faults, sites=site_names)
        fmt = (
            None if telephony_format == "generic" else call_format(telephony_format, self.telephony)
        )
        bad_rows = malformed_lines if fmt is None else fmt.malformed_lines
        telephony_faults.malformed_lines = lambda day: bad_rows(site0, day, self.fault_rng)
        if fmt is not None:
            self.telephony.layout = fmt.layout
        self.crm_writer = CrmWriter(out_dir, days[0], self.last_day)
        self.pbx = Pbx(world, self.rng, self.telephony, fmt)
        end_utc = max(s.clock.midnight_utc(self.last_day + timedelta(days=1)) for s in world.sites)
        self.crm = Crm(world, self.rng, self.fault_rng, faults, self.crm_writer, end_utc)
        self.marketing_file = out_dir / "marketing" / "tracking_numbers.csv"
        self.people: list[Person] = []
        self.people_cap = max(500, min(400_000, calls_per_day * 40))
        self.spammers = [random_e164(self.rng, self.rng.choice(AREA_CODES)) for _ in range(12)]
        self._heap: list[tuple[datetime, int, Event]] = []
        self._sequence = 0

    @property
    def files(self) -> list[Path]:
        return [self.marketing_file, *self.telephony.files, *self.crm_writer.files]

    # -- main loop -------------------------------------------------------------------------------
    def run(self, on_day: Callable[[date], None] | None = None) -> None:
        """Walk the period day by day, writing each day's telephony file once it is complete."""
        self._write_tracking_numbers()
        self._schedule_day(self.days[0])
        for index, day in enumerate(self.days):
            if index + 1 < len(self.days):  # a later site's night overlaps the next local day
                self._schedule_day(self.days[index + 1])
            boundary = max(s.clock.midnight_utc(day + timedelta(days=1)) for s in self.world.sites)
            while self._heap and self._heap[0][0] < boundary:
                instant, _, event = heapq.heappop(self._heap)
                self._dispatch(instant, event)
            self.telephony.flush(index)
            self.crm_writer.flush_before(day - timedelta(days=9))  # forms reach 7 days back
            if on_day is not None:
                on_day(day)
        self.crm_writer.close()

    def _push(self, instant: datetime, event: Event) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (instant, self._sequence, event))

    def _dispatch(self, instant: datetime, event: Event) -> None:
        site = self.world.sites[event.site]
        if site.clock.local(instant).date() > self.last_day:
            return  # after the period: the exports never saw it
        if event.kind == "arrival":
            self._arrival(instant, site)
        elif event.kind == "inbound":
            self._follow_up_inbound(instant, site, event)
        elif event.kind == "callback":
            self._callback(instant, site, event)
        elif event.kind == "crm_call":
            self._crm_only_call(instant, event)
        elif event.kind == "outbound":
            self._other_outbound(instant, site)
        else:
            self.pbx.internal(instant, site)

    # -- daily volume ----------------------------------------------------------------------------
    def _schedule_day(self, day: date) -> None:
        """Push the day's fresh calls of every site (follow-ups come from the calls)."""
        rng = self.rng
        sites = self.world.sites
        weekly_mean = (5 + sum(WEEKDAY_VOLUME.values())) / 7
        base = self.calls_per_day * INBOUND_SHARE_OF_VOLUME / weekly_mean
        total_weight = sum(s.weight for s in sites)
        for site in sites:
            volume = base * site.weight / total_weight * WEEKDAY_VOLUME.get(day.isoweekday(), 1.0)
            if day in site.holidays:
                volume *= HOLIDAY_VOLUME
            for _ in range(round(volume * rng.uniform(0.85, 1.15))):
                instant = site.clock.to_utc(self._wall_time(site, day))
                roll = rng.random()
                kind = "internal" if roll < 0.03 else "outbound" if roll < 0.075 else "arrival"
                self._push(instant, Event(kind, site.index))
            for _ in range(round(volume * FORMS_PER_CALL)):
                self.crm.background_form(site.clock.to_utc(self._wall_time(site, day)))

    def _wall_time(self, site: Site, day: date) -> datetime:
        """A local time on `day`: mostly inside the open intervals, else by the hourly shape."""
        rng = self.rng
        spans = site.open_intervals(day)
        minute = 0.0
        if spans and rng.random() < IN_HOURS_SHARE:
            roll = rng.random() * sum(closes - opens for opens, closes in spans)
            for opens, closes in spans:
                minute = opens + roll
                if roll < closes - opens:
                    break
                roll -= closes - opens
        else:
            for _ in range(50):
                hour = rng.choices(range(24), weights=AFTER_HOURS_PROFILE)[0]
                minute = hour * 60 + rng.random() * 60
                if not any(opens <= minute < closes for opens, closes in spans):
                    break
        return datetime.combine(day, time()) + timedelta(minutes=min(minute, 1439.99))

    def _is_open(self, site: Site, instant: datetime) -> bool:
        wall = site.clock.local(instant)
        minute = wall.hour * 60 + wall.minute + wall.second / 60
        return any(opens <= minute < closes for opens, closes in site.open_intervals(wall.date()))

    def _next_open(self, site: Site, instant: datetime) -> datetime:
        """`instant` if the site is open then, else the UTC instant it next opens."""
        wall = site.clock.local(instant)
        for ahead in range(15):
            day = wall.date() + timedelta(days=ahead)
            midnight = datetime.combine(day, time())
            for opens, closes in site.open_intervals(day):
                if ahead == 0 and wall >= midnight + timedelta(minutes=closes):
                    continue
                if ahead == 0 and wall >= midnight + timedelta(minutes=opens):
                    return instant
                return site.clock.to_utc(midnight + timedelta(minutes=opens))
        return instant

    # -- inbound calls -----------------------------------------------------------------------------
    def _arrival(self, instant: datetime, site: Site) -> None:
        """A fresh inbound call: a person, or one of the noise kinds."""
        rng = self.rng
        roll = rng.random()
        for kind, share in CALLER_KINDS:
            if roll < share:
                break
            roll -= share
        else:
            self._person_call(instant, site)
            return
        if kind == "unknown":
            self._noise_call(instant, site, self._unknown_caller(), "")
        elif kind == "blocklisted":
            self._noise_call(instant, site, self._spell(rng.choice(self.world.blocklist)), "")
        elif kind == "spam":
            spammer = rng.choice(self.spammers)
            self._noise_call(instant, site, self._spell(spammer), "spam", spammer)
        else:
            self._noise_call(instant, site, invalid_number(rng), "")

    def _unknown_caller(self) -> str:
        rng = self.rng
        if rng.random() < 0.35:
            return ""
        marker = rng.choice(self.world.unknown_markers)
        return marker.upper() if rng.random() < 0.5 else marker.title()

    def _spell(self, e164: str) -> str:
        """A caller's number as the PBX exports it (mangled now and then with dirty-numbers)."""
        text = spell(e164, pick_style(self.rng, TELEPHONY_FORMATS), self.rng)
        if "dirty-numbers" in self.faults and self.fault_rng.random() < DIRTY_SHARE:
            return invalid_number(self.fault_rng)
        return text

    def _noise_text(self, kind: str) -> str:
        return self.rng.choice(NOISE_VARIANTS[kind])

    def _noise_call(
        self, instant: datetime, site: Site, caller: str, noise: str, number: str = ""
    ) -> None:
        """Anonymous, blocklisted, spam or invalid callers: nobody follows them up.

        Spam is always on a CRM activity linked to the call, and often on the call too.
        """
        rng = self.rng
        on_leg = bool(noise) and rng.random() < NOISE_ON_CALL_SHARE
        ivr, queue = self._menu()
        placed = self.pbx.inbound(
            instant,
            site,
            caller,
            self._dialed(site, instant),
            ivr,
            queue,
            self._outcome(site, instant),
            self._noise_text(noise) if on_leg else "",
        )
        if noise:
            note = self._noise_text(noise)
            self.crm.activity(None, "inbound_call", instant, number, placed.pbx_id, note, 0)

    def _person_call(self, instant: datetime, site: Site) -> None:
        rng = self.rng
        person, is_new = self._caller(site)
        number = person.mobile if person.mobile and rng.random() < 0.2 else person.phone
        wrong = rng.random() < WRONG_NUMBER_SHARE
        first_touch = instant
        if not wrong and rng.random() < (0.18 if is_new else 0.05):
            first_touch = self.crm.web_form(person, number, instant)
        if is_new:
            self.crm.create_contacts(person, first_touch)
        ivr, queue = self._menu()
        outcome = self._outcome(site, instant)
        answered = outcome == "answered"
        marked = wrong and rng.random() < NOISE_ON_CALL_SHARE
        note = self._noise_text("wrong_number") if marked else self._agent_note(answered)
        dialed = self._dialed(site, instant)
        placed = self.pbx.inbound(
            instant, site, self._spell(number), dialed, ivr, queue, outcome, note
        )
        if wrong:
            self._wrong_number(site, person, number, placed)
        elif answered:
            self._after_answered(person, number, placed, ivr, queue)
        elif not self._short_abandon(placed) and person.busy_until <= instant:
            self._plan_episode(instant, site, person, number, placed, ivr, queue)

    def _caller(self, site: Site) -> tuple[Person, bool]:
        """A returning caller (preferably of this site) or a new one."""
        rng = self.rng
        if self.people and (len(self.people) >= self.people_cap or rng.random() < 0.35):
            for _ in range(3):
                person = rng.choice(self.people)
                if person.site == site.index:
                    break
            return person, False
        area = site.lines[0][2:5] if rng.random() < 0.4 else rng.choice(AREA_CODES)
        index = len(self.people)
        roll = rng.random()
        person = Person(
            index=index,
            site=site.index,
            phone=random_e164(rng, area),
            mobile=random_e164(rng, rng.choice(AREA_CODES)) if rng.random() < 0.45 else "",
            email=f"person{index}.{rng.randrange(100, 1000)}@example.com",
            kind="customer" if roll < 0.22 else "lead" if roll < 0.85 else "none",
        )
        self.people.append(person)
        return person, True

    def _menu(self) -> tuple[str, str]:
        """IVR selection and queue from the seeds (the queue follows the selection's intent)."""
        rng = self.rng
        world = self.world
        roll = rng.random()
        if roll < 0.62:
            ivr = rng.choice(world.ivr_options)
            queues = world.queues_by_intent.get(world.ivr_intent[ivr], world.queues)
            return ivr, rng.choice(queues) if rng.random() < 0.9 else ""
        if roll < 0.92:
            return "", rng.choice(world.queues)
        return "", ""

    def _dialed(self, site: Site, instant: datetime) -> str:
        """The number the caller dialed: a tracking number of the site or a business line."""
        tracking = self.world.dialable(site.index, instant.date())
        if tracking and self.rng.random() < 0.55:
            return self.rng.choice(tracking)
        return self.rng.choice(site.lines)

    def _outcome(self, site: Site, instant: datetime) -> str:
        return weighted(self.rng, IN_HOURS if self._is_open(site, instant) else AFTER_HOURS)

    def _short_abandon(self, placed: Placed) -> bool:
        hung_up = placed.status in ("abandoned", "canceled")
        return hung_up and placed.wait < self.world.short_abandon_seconds

    def _agent_note(self, answered: bool) -> str:
        if not answered or self.rng.random() < 0.6:
            return ""
        return self.rng.choice(AGENT_NOTES)

    def _after_answered(
        self, person: Person, number: str, placed: Placed, ivr: str, queue: str
    ) -> None:
        """The CTI logs some answered calls (by parent or answering leg); some become sales."""
        rng = self.rng
        if rng.random() < 0.35:
            by_leg = placed.answer_leg != placed.call_id and rng.random() < 0.2
            self.crm.activity(
                person,
                "inbound_call",
                placed.answer_leg_start if by_leg else placed.start,
                number,
                placed.answer_pbx_id if by_leg else placed.pbx_id,
                rng.choice(("answered", "completed")),
                placed.talk,
            )
        if self.world.intent_of(ivr, queue) == "high_intent" and rng.random() < 0.1:
            created = placed.start + timedelta(hours=rng.uniform(1, 72))
            self.crm.opportunity(person, created, placed.start)

    def _wrong_number(self, site: Site, person: Person, number: str, placed: Placed) -> None:
        """A misdial, always on the CRM activity linked to the call; a missed one is found
        out by a callback."""
        note = self._noise_text("wrong_number")
        self.crm.activity(
            person, "inbound_call", placed.start, number, placed.pbx_id, note, placed.talk
        )
        if placed.status != "answered" and not self._short_abandon(placed):
            callback = Event("callback", site.index, person, number, outcome="short")
            callback.disposition = "wrong_number"
            self._push(self._first_callback_time(placed.start, site), callback)

    # -- episodes ------------------------------------------------------------------------------------
    def _plan_episode(
        self,
        t0: datetime,
        site: Site,
        person: Person,
        number: str,
        placed: Placed,
        ivr: str,
        queue: str,
    ) -> None:
        """Everything that follows a reachable miss: redials, callbacks, a recovery, a sale."""
        rng = self.rng
        horizon = t0 + timedelta(days=self.world.callback_horizon_days)
        person.busy_until = t0 + timedelta(minutes=30)
        contact_at = self._plan_redials(t0, site, person, number, placed, ivr, queue)
        if contact_at is None and rng.random() >= NEVER_CALLED_BACK:
            contact_at = self._plan_callbacks(t0, site, person, number, horizon)
        if rng.random() < RECOVERY_SHARE:
            recovery = t0 + timedelta(minutes=rng.lognormvariate(math.log(300), 1.0))
            earlier = contact_at is None or recovery < contact_at
            if recovery < horizon - timedelta(minutes=1) and earlier:
                dialed = self._dialed(site, recovery)
                event = Event("inbound", site.index, person, number, dialed, outcome="answered")
                self._push(recovery, event)
                contact_at = recovery
        factor = INTENT_FACTOR.get(self.world.intent_of(ivr, queue), 1.0)
        if person.form_at is not None and t0 - person.form_at < timedelta(days=7):
            factor *= 1.3
        if rng.random() < min(0.9, self._conversion(t0, contact_at) * factor):
            base = contact_at or t0 + timedelta(hours=rng.uniform(3, 96))
            created = base + timedelta(minutes=rng.uniform(10, 1800))
            window = timedelta(days=self.world.conversion_window_days)
            latest = t0 + window - timedelta(hours=rng.uniform(0.5, 3))
            self.crm.opportunity(person, min(created, latest), t0)

    def _plan_redials(
        self,
        t0: datetime,
        site: Site,
        person: Person,
        number: str,
        placed: Placed,
        ivr: str,
        queue: str,
    ) -> datetime | None:
        """The caller tries again within minutes; returns when a redial got through."""
        rng = self.rng
        if rng.random() >= REDIAL_SHARE:
            return None
        instant = t0
        for _ in range(rng.choice((1, 1, 2))):
            instant += timedelta(seconds=rng.uniform(40, 480))
            answered = rng.random() < 0.3
            outcome = "answered" if answered else weighted(rng, REDIAL_MISSES)
            event = Event("inbound", site.index, person, number, placed.dialed, ivr, queue, outcome)
            self._push(instant, event)
            if answered:
                return instant
        return None

    def _plan_callbacks(
        self, t0: datetime, site: Site, person: Person, number: str, horizon: datetime
    ) -> datetime | None:
        """Agents call back, up to three times; returns the first connected callback."""
        rng = self.rng
        attempt = self._first_callback_time(t0, site)
        for _ in range(3):
            if attempt >= horizon:
                return None
            outcome = weighted(rng, CALLBACK_OUTCOMES)
            kind = "crm_call" if rng.random() < CRM_ONLY_SHARE else "callback"
            self._push(attempt, Event(kind, site.index, person, number, outcome=outcome))
            person.busy_until = max(person.busy_until, attempt)
            if outcome == "connected":
                return attempt
            if rng.random() > 0.6:
                return None
            later = attempt + timedelta(minutes=rng.lognormvariate(math.log(180), 0.9))
            attempt = self._when_open(site, later)
        return None

    def _first_callback_time(self, t0: datetime, site: Site) -> datetime:
        """Long-tailed: minutes in open hours; after hours, the on-call agent within the hour
        or else the next opening; days later for some."""
        rng = self.rng
        if rng.random() < 0.05:
            return self._when_open(site, t0 + timedelta(days=rng.uniform(1.5, 4.5)))
        if not self._is_open(site, t0) and rng.random() < ON_CALL_SHARE:
            return t0 + timedelta(minutes=rng.lognormvariate(math.log(30), 0.8))
        delay = timedelta(minutes=rng.lognormvariate(math.log(20), 1.1))
        return self._when_open(site, t0 + delay)

    def _when_open(self, site: Site, instant: datetime) -> datetime:
        """`instant`, or a while after the site next opens."""
        opens = self._next_open(site, instant)
        if opens == instant:
            return instant
        return opens + timedelta(minutes=self.rng.lognormvariate(math.log(25), 0.9))

    @staticmethod
    def _conversion(t0: datetime, contact_at: datetime | None) -> float:
        if contact_at is None:
            return CONVERSION_NEVER
        minutes = (contact_at - t0).total_seconds() / 60
        for limit, rate in CONVERSION_BY_DELAY:
            if minutes <= limit:
                return rate
        return CONVERSION_LATE

    # -- follow-up events ------------------------------------------------------------------------------
    def _follow_up_inbound(self, instant: datetime, site: Site, event: Event) -> None:
        """A redial or an inbound recovery by a known caller."""
        assert event.person is not None
        answered = event.outcome == "answered"
        ivr, queue = (event.ivr, event.queue) if event.ivr or event.queue else self._menu()
        placed = self.pbx.inbound(
            instant,
            site,
            self._spell(event.number),
            event.to_number,
            ivr,
            queue,
            event.outcome,
            self._agent_note(answered),
        )
        if answered:
            self._after_answered(event.person, event.number, placed, ivr, queue)

    def _callback(self, instant: datetime, site: Site, event: Event) -> None:
        """An agent calls a missed caller back through the PBX; the CTI logs most."""
        rng = self.rng
        dialed = spell(event.number, pick_style(rng, DIALED_FORMATS), rng)
        note = self._noise_text(event.disposition) if event.disposition else ""
        placed = self.pbx.outbound(instant, site, dialed, event.outcome, note)
        if note or rng.random() < LOGGED_CALLBACK_SHARE:
            disposition = note or self._crm_disposition(event.outcome)
            self.crm.activity(
                event.person,
                "outbound_call",
                placed.start,
                event.number,
                placed.pbx_id,
                disposition,
                placed.talk,
            )

    def _crm_only_call(self, instant: datetime, event: Event) -> None:
        """A callback from a mobile phone: only the CRM knows it (no pbx_call_id)."""
        rng = self.rng
        minimum = int(self.world.min_connected_talk_seconds)
        outcome = event.outcome
        if outcome == "connected":
            duration = max(minimum, int(rng.lognormvariate(math.log(140), 0.8)))
        elif outcome == "short":
            duration = rng.randint(1, max(1, minimum - 1))
        elif outcome == "voicemail":
            duration = rng.randint(15, 45)
        else:
            duration = 0
        disposition = {"short": "connected", "busy": "no_answer"}.get(outcome, outcome)
        self.crm.activity(
            event.person, "outbound_call", instant, event.number, "", disposition, duration
        )

    def _other_outbound(self, instant: datetime, site: Site) -> None:
        """Agents' own outbound calls to known people (not callbacks of a miss)."""
        if not self.people:
            return
        rng = self.rng
        person = rng.choice(self.people)
        outcome = weighted(rng, OTHER_OUTBOUND)
        dialed = spell(person.phone, pick_style(rng, DIALED_FORMATS), rng)
        placed = self.pbx.outbound(instant, site, dialed, outcome, "")
        if rng.random() < 0.7:
            self.crm.activity(
                person,
                "outbound_call",
                placed.start,
                person.phone,
                placed.pbx_id,
                self._crm_disposition(outcome),
                placed.talk,
            )

    @staticmethod
    def _crm_disposition(outcome: str) -> str:
        return {"short": "answered"}.get(outcome, outcome)

    # -- marketing ----------------------------------------------------------------------------------
    def _write_tracking_numbers(self) -> None:
        rows = [
            [
                w.number,
                w.campaign,
                w.source,
                w.channel,
                w.default_intent,
                w.valid_from.isoformat(),
                w.valid_to.isoformat() if w.valid_to else "",
            ]
            for w in self.world.tracking
        ]
        write_csv(self.marketing_file, TRACKING_HEADER, rows)
