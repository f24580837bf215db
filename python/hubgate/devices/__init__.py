"""Devices as the control loop sees them: one common model whatever the protocol."""
