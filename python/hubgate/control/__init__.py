"""The control core around the Rust allocator: limits with leases, failsafe watches, decisions."""
