"""`hubgate bench`: measures this machine and reports the capacity it gives, without pytest.

Each probe runs hubgate's own code path (codec, allocator, Modbus master, OCPP
session) and, where the peer library is installed, the peer's on the same input
in the same run. `capacity` turns the measured costs into connector and station
limits; `report` renders them.
"""
