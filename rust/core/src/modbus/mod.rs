//! Modbus codec, sans-IO: PDUs, TCP (MBAP) and RTU framing, client and
//! server codecs with request/response matching, typed register values and
//! a read planner.

pub mod batch;
pub mod client;
pub mod exception;
pub mod function;
pub mod latency;
pub mod matching;
pub mod pdu;
pub mod planner;
pub mod rtu;
pub mod server;
pub mod tcp;
pub mod values;

#[cfg(test)]
mod tests;
