"""The pure core: the job model, transitions, cadence, severity and endpoint rules.

No I/O, and nothing that renders text for people.
"""
