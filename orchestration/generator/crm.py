"""The CRM: people's contact records, opportunities, logged calls and web forms."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .clock import SiteClock, iso_utc_z
from .numbers import AREA_CODES, CRM_FORMATS, pick_style, random_e164, spell
from .output import CrmWriter
from .world import CRM_OWNERS, World

HIGH_INTENT_FORMS = ("quote", "pricing", "demo", "contact_sales")
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")
CLOCK_SKEW_SECONDS = (420.0, 780.0)  # clock-skew fault: +7 to +13 min, far from whole hours


@dataclass(slots=True)
class Person:
    """A caller: numbers, CRM records and whether an episode of theirs is being followed up."""

    index: int
    site: int
    phone: str
    mobile: str
    email: str
    kind: str  # customer, lead or none (in the CRM only if an opportunity needs a contact)
    contacts: list[tuple[datetime, list[str]]] = field(default_factory=list)
    busy_until: datetime = datetime.min
    form_at: datetime | None = None


class Crm:
    """Writes CRM records; the CRM's clock is the PBX's plus a small skew (or a fault)."""

    def __init__(
        self,
        world: World,
        rng: random.Random,
        fault_rng: random.Random,
        faults: frozenset[str],
        writer: CrmWriter,
        end_utc: datetime,
    ) -> None:
        self.world = world
        self.rng = rng
        self.fault_rng = fault_rng
        self.faults = faults
        self.writer = writer
        self.end_utc = end_utc  # nothing is exported from after the period
        self.misconfigured_zone: SiteClock = world.sites[0].clock
        self._ids = {"contacts": 0, "opportunities": 0, "activities": 0, "form_submissions": 0}

    # -- activities ----------------------------------------------------------------------------
    def activity(
        self,
        person: Person | None,
        kind: str,
        pbx_start: datetime,
        number: str,
        pbx_call_id: str,
        disposition: str,
        duration: int,
    ) -> None:
        """A logged call (`inbound_call`/`outbound_call`); `pbx_call_id` '' when CRM-only."""
        logged = self.clock(pbx_start)
        row = [
            self._next_id("activities", "ACT"),
            self.contact_id(person, pbx_start),
            kind,
            iso_utc_z(logged),
            self.phone(number),
            pbx_call_id,
            disposition,
            str(duration),
        ]
        self.writer.add("activities", logged, row)

    def clock(self, instant: datetime) -> datetime:
        """The CRM's time for an event at `instant`: a small skew, or a faulty clock."""
        logged = instant + timedelta(seconds=self.rng.gauss(2.0, 20.0))
        if "clock-skew" in self.faults:
            logged += timedelta(seconds=self.fault_rng.uniform(*CLOCK_SKEW_SECONDS))
        if "timezone-error" in self.faults:  # local wall time labelled as UTC
            logged += self.misconfigured_zone.offset(logged)
        return logged

    def phone(self, number: str) -> str:
        """A number as a person typed it into the CRM (raw text kept for non-NANP input)."""
        if not number.startswith("+1"):
            return number
        return spell(number, pick_style(self.rng, CRM_FORMATS), self.rng)

    # -- web forms -----------------------------------------------------------------------------
    def web_form(self, person: Person, number: str, call_at: datetime) -> datetime:
        """A web form in the days before a call; returns when it was submitted."""
        rng = self.rng
        submitted = call_at - timedelta(hours=rng.uniform(2, 24 * 6.5))
        kind = rng.choice(HIGH_INTENT_FORMS) if rng.random() < 0.82 else "support"
        if kind != "support":
            person.form_at = submitted
        self._form(submitted, number, person.email if rng.random() < 0.8 else "", kind)
        return submitted

    def background_form(self, submitted: datetime) -> None:
        """A form from someone who never calls."""
        rng = self.rng
        number = random_e164(rng, rng.choice(AREA_CODES))
        kind = rng.choice((*HIGH_INTENT_FORMS, "support"))
        self._form(submitted, number, f"visitor{rng.randrange(10**6)}@example.com", kind)

    def _form(self, submitted: datetime, number: str, email: str, kind: str) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            source, campaign = rng.choice(self.world.campaign_sources)
        else:
            source, campaign = "website", ""
        row = [
            self._next_id("form_submissions", "FS"),
            iso_utc_z(submitted),
            self.phone(number),
            email,
            kind,
            source,
            campaign,
        ]
        self.writer.add("form_submissions", submitted, row)

    # -- contacts ------------------------------------------------------------------------------
    def create_contacts(self, person: Person, first_touch: datetime) -> None:
        """A new person's records: one, or duplicates sharing numbers (chains of 3 too).

        Customers have been in the CRM for months; leads are created after the first touch.
        """
        if person.kind == "none":
            return
        rng = self.rng
        if person.kind == "customer":
            created = first_touch - timedelta(days=rng.uniform(30, 900))
            touched = first_touch - timedelta(hours=rng.uniform(0, 30))
        else:
            created = first_touch + timedelta(minutes=rng.uniform(1, 240))
            touched = created
        for position, (phone, mobile) in enumerate(self._duplicates(person)):
            when = created if position == 0 else created + timedelta(days=rng.uniform(0.05, 45))
            self._add_contact(person, when, max(when, touched), phone, mobile, position)
        if person.kind == "customer" and rng.random() < 0.5:
            self._past_sale(person, created, touched)

    def _duplicates(self, person: Person) -> list[tuple[str, str]]:
        """(phone, mobile) of each record: a shared phone, or one's mobile another's phone."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            return [(person.phone, person.mobile), (person.phone, "")]
        if roll < 0.13:
            person.mobile = person.mobile or random_e164(rng, rng.choice(AREA_CODES))
            if roll < 0.10:
                work = random_e164(rng, rng.choice(AREA_CODES))
                return [(person.phone, person.mobile), (person.mobile, work), (work, "")]
            return [(person.phone, person.mobile), (person.mobile, "")]
        return [(person.phone, person.mobile)]

    def _add_contact(
        self,
        person: Person,
        created: datetime,
        updated: datetime,
        phone: str,
        mobile: str,
        position: int,
    ) -> None:
        if created >= self.end_utc:
            return
        rng = self.rng
        email = person.email if position == 0 else rng.choice(("", f"alt.{person.email}"))
        row = [
            self._next_id("contacts", "CT"),
            self.phone(phone),
            self.phone(mobile) if mobile else "",
            email,
            iso_utc_z(created),
            iso_utc_z(min(updated, self.end_utc - timedelta(seconds=1))),
            "customer" if person.kind == "customer" else "lead",
            rng.choice(CRM_OWNERS) if rng.random() < 0.9 else "",
        ]
        person.contacts.append((created, row))
        person.contacts.sort(key=lambda item: item[0])
        self.writer.add("contacts", updated, row, keyed=True)

    def contact_id(self, person: Person | None, instant: datetime) -> str:
        """The person's earliest contact existing at `instant` ('' if none)."""
        if person is not None:
            for created, row in person.contacts:
                if created <= instant:
                    return row[0]
        return ""

    def _ensure_contact(self, person: Person, instant: datetime, not_before: datetime) -> str:
        """A contact existing at `instant`, created shortly before if there is none."""
        existing = self.contact_id(person, instant)
        if existing:
            return existing
        created = max(not_before, instant - timedelta(minutes=self.rng.uniform(1, 60)))
        if person.kind == "none":
            person.kind = "lead"
        self._add_contact(person, created, created, person.phone, person.mobile, 0)
        return self.contact_id(person, instant)

    def _become_customer(self, person: Person, won_at: datetime) -> None:
        """A won lead's first record is exported again, updated, with lifecycle `customer`."""
        if not person.contacts or person.contacts[0][1][6] == "customer":
            return
        created, row = person.contacts[0]
        updated = [*row]
        updated[5], updated[6] = iso_utc_z(won_at), "customer"
        person.contacts[0] = (created, updated)
        self.writer.update("contacts", won_at, updated)

    # -- opportunities -------------------------------------------------------------------------
    def opportunity(self, person: Person, created: datetime, not_before: datetime) -> None:
        """An opportunity created at `created`: won or lost if it closed within the period."""
        if created >= self.end_utc:
            return
        rng = self.rng
        contact = self._ensure_contact(person, created, not_before)
        closed = created + timedelta(days=rng.lognormvariate(math.log(9), 0.7))
        amount = self._amount()
        if closed < self.end_utc:
            won = rng.random() < 0.5
            self._opportunity_row(contact, created, amount, closed, won)
            if won:
                self._become_customer(person, closed)
        else:
            self._opportunity_row(contact, created, amount, None, False)

    def _past_sale(self, person: Person, customer_since: datetime, touched: datetime) -> None:
        """A won opportunity from before the period, so the customer is one in the CRM too."""
        rng = self.rng
        created = customer_since + timedelta(days=rng.uniform(0, 20))
        closed = created + timedelta(days=rng.uniform(2, 40))
        if closed < touched and person.contacts:
            contact = person.contacts[0][1][0]
            self._opportunity_row(contact, created, self._amount(), closed, True, touched)

    def _amount(self) -> str:
        return f"{self.rng.lognormvariate(math.log(2400), 0.75):.2f}"

    def _opportunity_row(
        self,
        contact: str,
        created: datetime,
        amount: str,
        closed: datetime | None,
        won: bool,
        exported: datetime | None = None,
    ) -> None:
        if closed is None:
            stage = OPEN_STAGES[min(3, (self.end_utc - created).days // 4)]
        else:
            stage = "Closed Won" if won else "Closed Lost"
        row = [
            self._next_id("opportunities", "OPP"),
            contact,
            iso_utc_z(created),
            stage,
            amount,
            iso_utc_z(closed) if closed else "",
            "true" if won else "false",
            "true" if closed else "false",
        ]
        self.writer.add("opportunities", exported or closed or created, row)

    def _next_id(self, entity: str, prefix: str) -> str:
        self._ids[entity] += 1
        return f"{prefix}{self._ids[entity]:07d}"
