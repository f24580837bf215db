//! `hubgate-core`: the sans-IO heart of the hubgate EV-charging gateway.
//!
//! Plain Rust with no Python and no I/O, so that embedded gateway vendors can
//! use it on its own: bytes in, frames and events out; measurements in,
//! setpoints out.
#![forbid(unsafe_code)]

pub mod alloc;
pub mod crc;
pub mod failsafe;
pub mod json_tape;
pub mod modbus;
pub mod ocpp;
pub mod paths;
pub mod plan;
pub mod websocket;
