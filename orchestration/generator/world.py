"""Everything the generator knows before the first call: default seeds, vars, campaigns.

Sites, business lines, hours, holidays, IVR options, queues, the blocklist and the unknown
caller markers come from the project's default seeds (`load_config()`), thresholds from the
dbt vars; only the marketing campaigns, agents and CRM owners are the generator's own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from orchestration.config import Config

from .clock import SiteClock

# (campaign, source, channel, default_intent); assigned to sites round-robin.
CAMPAIGNS: tuple[tuple[str, str, str, str], ...] = (
    ("google_ads_brand", "google", "paid_search", "high_intent"),
    ("google_ads_local", "google", "paid_search", ""),
    ("facebook_lead_ads", "facebook", "paid_social", ""),
    ("direct_mail_winter", "direct_mail", "print", "high_intent"),
    ("organic_website", "organic", "organic", ""),
    ("customer_newsletter", "email", "email", "service"),
)
# The direct-mail number is handed to the spring campaign half-way through the period.
SWITCHED_CAMPAIGN = "direct_mail_winter"
SWITCH_TO = ("direct_mail_spring", "direct_mail", "print", "")
# An old campaign whose number was retired before the period (no calls reach it).
RETIRED_CAMPAIGN = ("newspaper_2024", "newspaper", "print", "high_intent")
# The campaign that `tracking-overlap` puts on top of the first tracking number.
OVERLAP_CAMPAIGN = ("partner_referral", "partner", "referral", "")

AGENT_NAMES: tuple[str, ...] = (
    "amelia.chen", "rené.dubois", "marcus.hale", "priya.nair", "tom.becker", "sofia.russo",
    "josé.martínez", "kim.tran", "ben.ortiz", "lena.vogel", "omar.haddad", "grace.kim",
)  # fmt: skip
AGENTS_PER_SITE = 6
CRM_OWNERS: tuple[str, ...] = ("Dana Whitfield", "Luis Romero", "Hannah Berg", "Sam Okafor")


@dataclass(frozen=True)
class Site:
    """One site of the `sites` seed, with its hours, holidays and staff."""

    index: int
    name: str
    clock: SiteClock
    lines: tuple[str, ...]
    hours: dict[int, tuple[tuple[int, int], ...]]  # ISO weekday -> (opens, closes) minutes
    holidays: frozenset[date]
    agents: tuple[str, ...]
    extensions: tuple[str, ...]
    weight: float  # share of the inbound volume
    telephony_clock: str = "local"  # how its PBX writes offset-less times: local or utc

    def open_intervals(self, day: date) -> tuple[tuple[int, int], ...]:
        """Open intervals of a local date in minutes after midnight (none on a holiday)."""
        if day in self.holidays:
            return ()
        return self.hours.get(day.isoweekday(), ())


@dataclass(frozen=True)
class TrackingWindow:
    """One row of `marketing/tracking_numbers.csv`."""

    number: str
    campaign: str
    source: str
    channel: str
    default_intent: str
    valid_from: date
    valid_to: date | None
    site: int
    injected: bool = False  # added by the tracking-overlap fault

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True)
class World:
    """Seeds, vars and campaigns in one read-only object."""

    sites: tuple[Site, ...]
    ivr_options: tuple[str, ...]
    ivr_intent: dict[str, str]
    queues: tuple[str, ...]
    queue_intent: dict[str, str]
    queues_by_intent: dict[str, tuple[str, ...]]
    blocklist: tuple[str, ...]
    unknown_markers: tuple[str, ...]
    tracking: tuple[TrackingWindow, ...]
    short_abandon_seconds: float
    min_connected_talk_seconds: float
    callback_horizon_days: int
    conversion_window_days: int
    form_lookback_days: int

    def intent_of(self, ivr: str, queue: str) -> str:
        """The intent the seeds give an IVR selection, else a queue ('' if neither maps)."""
        return self.ivr_intent.get(ivr.strip()) or self.queue_intent.get(queue.strip().lower(), "")

    def dialable(self, site: int, day: date) -> tuple[str, ...]:
        """Tracking numbers of a site in force on a date."""
        numbers = (w.number for w in self.tracking if w.site == site and w.covers(day))
        return tuple(dict.fromkeys(numbers))

    @property
    def campaign_sources(self) -> tuple[tuple[str, str], ...]:
        """(source, campaign) pairs a web form can carry."""
        return tuple((w.source, w.campaign) for w in self.tracking if not w.injected)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _hours_by_site(config: Config) -> dict[str, dict[int, tuple[tuple[int, int], ...]]]:
    collected: dict[str, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for row in config.seeds["business_hours"]:
        interval = (_minutes(row["opens_at"]), _minutes(row["closes_at"]))
        collected[row["site"]][int(row["day_of_week"])].append(interval)
    return {
        site: {dow: tuple(sorted(spans)) for dow, spans in days.items()}
        for site, days in collected.items()
    }


def _holidays_by_site(config: Config) -> dict[str, frozenset[date]]:
    collected: dict[str, set[date]] = defaultdict(set)
    for row in config.seeds.get("holidays", []):
        collected[row["site"]].add(date.fromisoformat(row["date"]))
    return {site: frozenset(days) for site, days in collected.items()}


def _sites(config: Config) -> tuple[Site, ...]:
    hours = _hours_by_site(config)
    holidays = _holidays_by_site(config)
    sites = []
    for index, row in enumerate(config.sites):
        agents = tuple(
            AGENT_NAMES[(index * AGENTS_PER_SITE + k) % len(AGENT_NAMES)]
            for k in range(AGENTS_PER_SITE)
        )
        extensions = tuple(str(2000 + 1000 * index + 101 + k) for k in range(AGENTS_PER_SITE))
        sites.append(
            Site(
                index=index,
                name=row["site"],
                clock=SiteClock(ZoneInfo(row["time_zone"])),
                lines=tuple(row["business_lines"].split()),
                hours=hours.get(row["site"], {}),
                holidays=holidays.get(row["site"], frozenset()),
                agents=agents,
                extensions=extensions,
                weight=1.0 / (index + 1) ** 0.5,
                telephony_clock=(row.get("telephony_clock") or "local").strip().lower(),
            )
        )
    return tuple(sites)


def _tracking_numbers(sites: tuple[Site, ...]) -> dict[int, list[str]]:
    """Numbers next to each site's first business line: +1 AAA EEE 01nn, never a line."""
    taken = {line for site in sites for line in site.lines}
    numbers: dict[int, list[str]] = {}
    for site in sites:
        prefix = site.lines[0][:-4]
        numbers[site.index] = [
            f"{prefix}01{n:02d}" for n in range(20, 100) if f"{prefix}01{n:02d}" not in taken
        ]
    return numbers


def tracking_windows(
    sites: tuple[Site, ...], start: date, days: int, overlap: bool
) -> tuple[TrackingWindow, ...]:
    """Campaign windows covering the whole period without gaps (or with the overlap fault)."""
    free = _tracking_numbers(sites)
    since = start - timedelta(days=120)
    switch = start + timedelta(days=max(1, days // 2))
    windows: list[TrackingWindow] = []
    for k, (campaign, source, channel, intent) in enumerate(CAMPAIGNS):
        site = sites[k % len(sites)].index
        number = free[site].pop(0)
        if campaign == SWITCHED_CAMPAIGN:
            windows.append(
                TrackingWindow(number, campaign, source, channel, intent, since, switch, site)
            )
            windows.append(TrackingWindow(number, *SWITCH_TO, switch, None, site))
        else:
            windows.append(
                TrackingWindow(number, campaign, source, channel, intent, since, None, site)
            )
    retired_site = sites[-1].index
    windows.append(
        TrackingWindow(
            free[retired_site].pop(0),
            *RETIRED_CAMPAIGN,
            start - timedelta(days=400),
            start - timedelta(days=150),
            retired_site,
        )
    )
    if overlap:
        first = windows[0]
        begins = start + timedelta(days=max(0, days // 4))
        windows.append(
            TrackingWindow(
                first.number,
                *OVERLAP_CAMPAIGN,
                begins,
                begins + timedelta(days=14),
                first.site,
                injected=True,
            )
        )
    return tuple(windows)


def build_world(config: Config, start: date, days: int, overlap: bool) -> World:
    """Read the seeds and vars the generator needs."""
    ivr_intent = {row["ivr_selection"]: row["intent"] for row in config.seeds["ivr_intents"]}
    queue_rows = config.seeds["queue_intents"]
    queues_by_intent: dict[str, list[str]] = defaultdict(list)
    for row in queue_rows:
        queues_by_intent[row["intent"]].append(row["queue"])
    sites = _sites(config)
    variables = config.vars
    return World(
        sites=sites,
        ivr_options=tuple(ivr_intent),
        ivr_intent=ivr_intent,
        queues=tuple(row["queue"] for row in queue_rows),
        queue_intent={row["queue"].lower(): row["intent"] for row in queue_rows},
        queues_by_intent={k: tuple(v) for k, v in queues_by_intent.items()},
        blocklist=tuple(row["caller_number"] for row in config.seeds["caller_blocklist"]),
        unknown_markers=tuple(row["marker"] for row in config.seeds["unknown_caller_markers"]),
        tracking=tracking_windows(sites, start, days, overlap),
        short_abandon_seconds=float(variables["short_abandon_seconds"]),
        min_connected_talk_seconds=float(variables["min_connected_talk_seconds"]),
        callback_horizon_days=int(variables["callback_horizon_days"]),
        conversion_window_days=int(variables["conversion_window_days"]),
        form_lookback_days=int(variables["form_intent_lookback_days"]),
    )
