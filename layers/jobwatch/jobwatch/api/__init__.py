"""The registration HTTP API (API Gateway REST): request models and routes."""
