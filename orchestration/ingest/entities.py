"""The CRM and marketing entities: one declaration of each export's columns.

`crm.py` reads the exports with these specs and `schema.py` derives the DDL of their raw tables
from them (docs/architecture.md, "Raw tables": names, order and types are a contract). The
naming of the normalized columns (`phone_columns`, `timestamp_column`) lives here too, so the
readers and the DDL agree; this module imports nothing else of the ingest package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Normalized columns of a phone column `<col>`, in the order PhoneNormalizer returns them.
PHONE_SUFFIXES: list[tuple[str, str]] = [
    ("_e164", "VARCHAR"),
    ("_is_valid", "BOOLEAN"),
    ("_is_unknown", "BOOLEAN"),
    ("_key", "VARCHAR"),
    ("_digits", "INTEGER"),
]


def phone_columns(col: str) -> list[tuple[str, str]]:
    return [(f"{col}{suffix}", typ) for suffix, typ in PHONE_SUFFIXES]


def timestamp_column(col: str) -> tuple[str, str]:
    return (f"{col}_utc", "TIMESTAMP")


@dataclass(frozen=True)
class EntitySpec:
    entity: str  # file-name prefix and ledger `entity`
    directory: str  # crm / marketing
    table: str  # raw table
    columns: tuple[str, ...]  # export columns, in table order
    id_columns: tuple[str, ...]  # within-file duplicate key (first one must be non-empty)
    required: tuple[str, ...]  # header columns without which the file is refused
    timestamps: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()  # durations: numeric, >= 0, <= max_call_hours
    interval: tuple[str, str] | None = None  # (from, to): to must not precede from
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def table_columns(self) -> list[tuple[str, str]]:
        """Columns of the raw table before the load metadata, with their DuckDB types.

        The export columns (VARCHAR, as read), then the phone columns of each `phones` entry,
        then `<col>_utc` of each `timestamps` entry: the order `read_entity` builds a row in.
        """
        return [
            *((column, "VARCHAR") for column in self.columns),
            *(pair for column in self.phones for pair in phone_columns(column)),
            *(timestamp_column(column) for column in self.timestamps),
        ]

    @property
    def row_columns(self) -> list[str]:
        return [name for name, _ in self.table_columns]


ENTITIES: dict[str, EntitySpec] = {
    spec.entity: spec
    for spec in (
        EntitySpec(
            entity="contacts",
            directory="crm",
            table="crm_contacts",
            columns=(
                "contact_id",
                "phone",
                "mobile_phone",
                "email",
                "created_at",
                "updated_at",
                "lifecycle",
                "owner",
            ),
            id_columns=("contact_id",),
            required=("contact_id", "created_at"),
            timestamps=("created_at", "updated_at"),
            phones=("phone", "mobile_phone"),
            aliases={
                "id": "contact_id",
                "record id": "contact_id",
                "phone number": "phone",
                "mobilephone": "mobile_phone",
                "mobile phone number": "mobile_phone",
                "createddate": "created_at",
                "create date": "created_at",
                "lastmodifieddate": "updated_at",
                "last modified date": "updated_at",
                "lifecycle stage": "lifecycle",
                "ownerid": "owner",
                "contact owner": "owner",
                "hs_object_id": "contact_id",
                "createdate": "created_at",
                "hs_lastmodifieddate": "updated_at",
                "lifecyclestage": "lifecycle",
                "hubspot_owner_id": "owner",
            },
        ),
        EntitySpec(
            entity="opportunities",
            directory="crm",
            table="crm_opportunities",
            columns=(
                "opportunity_id",
                "contact_id",
                "created_at",
                "stage",
                "amount",
                "closed_at",
                "is_won",
                "is_closed",
            ),
            id_columns=("opportunity_id",),
            required=("opportunity_id", "created_at"),
            timestamps=("created_at", "closed_at"),
            aliases={
                "id": "opportunity_id",
                "record id": "opportunity_id",
                "contactid": "contact_id",
                "createddate": "created_at",
                "create date": "created_at",
                "stagename": "stage",
                "deal stage": "stage",
                "closedate": "closed_at",
                "close date": "closed_at",
                "iswon": "is_won",
                "isclosed": "is_closed",
                "hs_object_id": "opportunity_id",
                "createdate": "created_at",
                "dealstage": "stage",
                "hs_is_closed_won": "is_won",
                "hs_is_closed": "is_closed",
                "associated_contact_id": "contact_id",
                "associated contact id": "contact_id",
            },
        ),
        EntitySpec(
            entity="activities",
            directory="crm",
            table="crm_activities",
            columns=(
                "activity_id",
                "contact_id",
                "activity_type",
                "logged_at",
                "phone",
                "pbx_call_id",
                "disposition",
                "duration_seconds",
            ),
            id_columns=("activity_id",),
            required=("activity_id", "logged_at"),
            timestamps=("logged_at",),
            phones=("phone",),
            seconds=("duration_seconds",),
            aliases={
                "id": "activity_id",
                "whoid": "contact_id",
                "calltype": "activity_type",
                "callobject": "pbx_call_id",
                "calldisposition": "disposition",
                "calldurationinseconds": "duration_seconds",
                "createddate": "logged_at",
                "hs_object_id": "activity_id",
                "hs_timestamp": "logged_at",
                "hs_call_direction": "activity_type",
                "hs_call_duration": "duration_seconds",
                "hs_call_status": "disposition",
                "hs_call_external_id": "pbx_call_id",
                "associated_contact_id": "contact_id",
                "associated contact id": "contact_id",
                "contactid": "contact_id",
            },
        ),
        EntitySpec(
            entity="form_submissions",
            directory="crm",
            table="crm_form_submissions",
            columns=(
                "submission_id",
                "submitted_at",
                "phone",
                "email",
                "form_type",
                "source",
                "campaign",
            ),
            id_columns=("submission_id",),
            required=("submission_id", "submitted_at"),
            timestamps=("submitted_at",),
            phones=("phone",),
        ),
        EntitySpec(
            entity="tracking_numbers",
            directory="marketing",
            table="marketing_tracking_numbers",
            columns=(
                "tracking_number",
                "campaign",
                "source",
                "channel",
                "default_intent",
                "valid_from",
                "valid_to",
            ),
            # One number can carry several campaigns over time (or, wrongly, at once: the
            # tracking_numbers gate must see that), so the row key includes both.
            id_columns=("tracking_number", "campaign", "valid_from"),
            required=("tracking_number", "valid_from"),
            timestamps=("valid_from", "valid_to"),
            phones=("tracking_number",),
            interval=("valid_from", "valid_to"),
        ),
    )
}
