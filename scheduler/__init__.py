"""Scheduling: a pure cycle (snapshot + clock in, decisions out) and the loop that feeds it."""
