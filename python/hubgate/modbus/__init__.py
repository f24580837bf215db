"""Modbus: the sans-IO codec (`hubgate.modbus.codec`) and the transports built on it."""
