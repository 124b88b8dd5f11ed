with source as (

    select * from {{ source('raw', 'crm_opportunities') }}

),

renamed as (

    select
        opportunity_id,
        nullif(trim(contact_id), '') as contact_id,
        created_at_utc,
        nullif(trim(stage), '') as stage,
        {{ safe_cast("nullif(trim(amount), '')", 'double') }} as amount,
        closed_at_utc,
        {{ parse_bool('is_won') }} as is_won,
        {{ parse_bool('is_closed') }} as is_closed,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
