-- One CRM identity per normalized (E.164) number: every phone field of every current contact
-- names its contact's identity. A number claimed by two identities (the identity map is stale
-- or was edited) goes to the identity whose survivor contact was created first (ties by
-- identity_id) and is flagged.
with contacts as (

    select * from {{ ref('int_crm_contacts_identified') }}

),

numbers as (

    select phone_e164 as caller_number_e164, identity_id from contacts where phone_e164 is not null
    union
    select mobile_phone_e164 as caller_number_e164, identity_id from contacts where mobile_phone_e164 is not null

),

survivors as (

    select contact_id as identity_id, created_at_utc as survivor_created_at_utc
    from contacts
    where is_survivor

),

ranked as (

    select
        numbers.caller_number_e164,
        numbers.identity_id,
        count(*) over (partition by numbers.caller_number_e164) as claiming_identities,
        row_number() over (
            partition by numbers.caller_number_e164
            order by survivors.survivor_created_at_utc asc nulls last, numbers.identity_id asc
        ) as claim_rank
    from numbers
    left join survivors
        on numbers.identity_id = survivors.identity_id

),

final as (

    select
        caller_number_e164,
        identity_id,
        claiming_identities,
        claiming_identities > 1 as has_identity_conflict
    from ranked
    where claim_rank = 1

)

select * from final
