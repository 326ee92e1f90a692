"""imagestudio's benchmark runner: ``python -m benchmarks`` (or ``imagestudio bench``).

Each benchmark measures the app against a plain-diffusers baseline in the same run, interleaved, and
reports the ratio with its spread against a target; see ``docs/benchmarks.md``.
"""
