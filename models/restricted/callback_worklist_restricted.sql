{{ config(alias='callback_worklist', schema='restricted', materialized='table') }}
-- restricted.callback_worklist: the rows of marts.callback_worklist with the caller's E.164
-- number, for the agents who call back. Lives in the warehouse file only (never published).
with worklist as (

    select * from {{ ref('callback_worklist') }}

),

numbers as (

    select episode_id, caller_number_e164 from {{ ref('int_missed_call_episodes_collapsed') }}

),

final as (

    select
        worklist.*,
        numbers.caller_number_e164
    from worklist
    inner join numbers
        on worklist.episode_id = numbers.episode_id

)

select * from final
