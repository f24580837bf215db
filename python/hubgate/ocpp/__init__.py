"""OCPP 1.6J, 2.0.1 and 2.1 charge points on Trio: framing, validation, sessions, the
listener, station state and smart charging (see docs/ocpp.md)."""
