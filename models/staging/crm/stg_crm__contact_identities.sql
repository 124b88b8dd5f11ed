with source as (

    select * from {{ source('raw', 'crm_contact_identities') }}

),

renamed as (

    select
        contact_id,
        identity_id,
        identity_size

    from source

)

select * from renamed
