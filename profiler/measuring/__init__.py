"""Measuring real code: devices (synchronise, event timers, peak memory), statistics of repeated runs,
`time_callable` (the warm-up + repeat loop every measurement goes through), the benchmark harness behind
`measure`, and calibration of hardware profiles. It measures; it renders nothing and sets no global state."""
