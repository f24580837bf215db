"""Allocation engine tests: reference implementation, invariants, differential and property tests."""
