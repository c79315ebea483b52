"""The application: the poll cycle, discovery, registration and the operations the API and CLI share."""
