-- Asterisk queue_log events (raw.asterisk_queue_events), one row per delivered copy. The
-- literal `NONE` that Asterisk writes for a missing queue or agent reads as null.
with source as (

    select * from {{ source('raw', 'asterisk_queue_events') }}

),

renamed as (

    select
        source_system,
        nullif(trim(callid), '') as callid,
        case when upper(trim(queue)) in ('', 'NONE') then null else trim(queue) end as queue,
        case when upper(trim(agent)) in ('', 'NONE') then null else trim(agent) end as agent,
        upper(trim(event)) as event,
        event_at_utc,
        epoch as epoch_raw,
        nullif(trim(data1), '') as data1,
        nullif(trim(data2), '') as data2,
        nullif(trim(data3), '') as data3,
        nullif(trim(data4), '') as data4,
        nullif(trim(data5), '') as data5,
        _file as source_file,
        _line as source_line,
        _load_id as load_id,
        _load_seq as load_seq

    from source

)

select * from renamed
