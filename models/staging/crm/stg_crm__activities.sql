with source as (

    select * from {{ source('raw', 'crm_activities') }}

),

renamed as (

    select
        activity_id,
        nullif(trim(contact_id), '') as contact_id,
        {{ normalize_label('activity_type') }} as activity_type,
        logged_at_utc,
        phone as phone_raw,
        phone_e164,
        phone_is_valid,
        phone_is_unknown,
        phone_key,
        nullif(trim(pbx_call_id), '') as pbx_call_id,
        {{ normalize_label('disposition') }} as disposition,
        {{ safe_cast("nullif(trim(duration_seconds), '')", 'double') }} as duration_seconds,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
