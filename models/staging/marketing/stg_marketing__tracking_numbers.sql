with source as (

    select * from {{ source('raw', 'marketing_tracking_numbers') }}

),

renamed as (

    select
        tracking_number as tracking_number_raw,
        tracking_number_e164 as tracking_number,
        tracking_number_is_valid,
        nullif(trim(campaign), '') as campaign,
        nullif(trim(source), '') as source,
        nullif(trim(channel), '') as channel,
        {{ normalize_label('default_intent') }} as default_intent,
        valid_from_utc,
        valid_to_utc,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
