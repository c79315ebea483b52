"""What each Lambda function runs: its settings, its wiring, one call. `functions/*/app.py` delegate here."""
