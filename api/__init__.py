"""FastAPI application: routers, request/response schemas and dependencies only."""
