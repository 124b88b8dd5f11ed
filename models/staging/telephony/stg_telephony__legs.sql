with source as (

    select * from {{ source('raw', 'telephony_legs') }}

),

renamed as (

    select
        source_system,
        call_id,
        nullif(trim(parent_call_id), '') as parent_call_id,
        source_format,
        direction_normalized as direction,
        site_resolved as site,
        status_normalized as status,
        nullif(trim(queue), '') as queue,
        nullif(trim(ivr_selection), '') as ivr_selection,
        nullif(trim(agent_id), '') as agent_id,
        nullif(trim(disposition), '') as disposition,
        {{ normalize_label('disposition') }} as disposition_normalized,
        started_at_utc,
        answered_at_utc,
        ended_at_utc,
        talk_seconds_num as talk_seconds,
        from_number as from_number_raw,
        from_number_e164,
        from_number_is_valid,
        from_number_is_unknown,
        from_number_key,
        from_number_digits,
        to_number as to_number_raw,
        to_number_e164,
        to_number_is_valid,
        to_number_is_unknown,
        to_number_key,
        to_number_digits,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
