with source as (

    select * from {{ source('raw', 'crm_contacts') }}

),

renamed as (

    select
        contact_id,
        phone as phone_raw,
        phone_e164,
        phone_is_valid,
        phone_is_unknown,
        phone_key,
        mobile_phone as mobile_phone_raw,
        mobile_phone_e164,
        mobile_phone_is_valid,
        mobile_phone_is_unknown,
        mobile_phone_key,
        nullif(trim(email), '') as email,
        created_at_utc,
        updated_at_utc,
        {{ normalize_label('lifecycle') }} as lifecycle,
        nullif(trim(owner), '') as owner,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
