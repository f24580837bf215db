"""Modbus on Trio: the Rust codec's Python face, transports, serial lines, statistics."""
