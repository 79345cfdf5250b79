"""The portal's routers, one per area: sign-in, jobs, tenants, platform admin."""
