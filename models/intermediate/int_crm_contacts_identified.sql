-- Current CRM contacts (newest delivery per contact_id) with their merged identity
-- (metrics.md section 1: contacts sharing a normalized number, merged transitively at load;
-- the earliest-created contact is the survivor). A contact the identity map does not know yet
-- is its own identity.
with contacts as (

    select * from {{ ref('int_crm_contacts_deduplicated') }}

),

identities as (

    select contact_id, identity_id, identity_size from {{ ref('stg_crm__contact_identities') }}

),

final as (

    select
        contacts.contact_id,
        coalesce(identities.identity_id, contacts.contact_id) as identity_id,
        coalesce(identities.identity_id, contacts.contact_id) = contacts.contact_id as is_survivor,
        coalesce(identities.identity_size, 1) as identity_size,
        contacts.phone_e164,
        contacts.mobile_phone_e164,
        contacts.created_at_utc,
        contacts.lifecycle,
        contacts.owner
    from contacts
    left join identities
        on contacts.contact_id = identities.contact_id

)

select * from final
