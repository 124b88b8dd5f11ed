with source as (

    select * from {{ source('raw', 'crm_form_submissions') }}

),

renamed as (

    select
        submission_id,
        submitted_at_utc,
        phone as phone_raw,
        phone_e164,
        phone_is_valid,
        phone_is_unknown,
        phone_key,
        nullif(trim(email), '') as email,
        {{ normalize_label('form_type') }} as form_type,
        nullif(trim(source), '') as source,
        nullif(trim(campaign), '') as campaign,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
