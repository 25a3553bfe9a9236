"""Timing real code: devices (synchronise, event timers, peak memory), statistics of repeated runs, and
`time_callable`, the warm-up + repeat loop every measurement goes through."""
