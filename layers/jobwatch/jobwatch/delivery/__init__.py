"""The one delivery engine: claims, per-job order, retries, dead-letters and the SQS batch report,
for every channel."""
