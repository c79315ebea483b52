"""DynamoDB adapters: jobs (with their outbox and history), delivery claims, watches."""
