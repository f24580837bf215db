//! Exception codes a server answers with (MODBUS Application Protocol §7).

/// The function code is not supported by the server.
pub const ILLEGAL_FUNCTION: u8 = 0x01;
/// The address (or address plus quantity) is not valid on the server.
pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// A value in the request is not allowed, including a malformed request.
pub const ILLEGAL_DATA_VALUE: u8 = 0x03;
/// An unrecoverable error occurred while the server handled the request.
pub const SERVER_DEVICE_FAILURE: u8 = 0x04;
/// The request was accepted and takes long to process.
pub const ACKNOWLEDGE: u8 = 0x05;
/// The server is busy with a long-running command.
pub const SERVER_DEVICE_BUSY: u8 = 0x06;
/// The server cannot perform the program function.
pub const NEGATIVE_ACKNOWLEDGE: u8 = 0x07;
/// The server found a parity error in its extended memory.
pub const MEMORY_PARITY_ERROR: u8 = 0x08;
/// The gateway could not allocate a path to the target.
pub const GATEWAY_PATH_UNAVAILABLE: u8 = 0x0A;
/// The device behind a gateway did not answer: treat it as offline.
pub const GATEWAY_TARGET_FAILED: u8 = 0x0B;

/// Name of an exception code as the specification spells it.
#[must_use]
pub const fn name(code: u8) -> &'static str {
    match code {
        ILLEGAL_FUNCTION => "Illegal Function",
        ILLEGAL_DATA_ADDRESS => "Illegal Data Address",
        ILLEGAL_DATA_VALUE => "Illegal Data Value",
        SERVER_DEVICE_FAILURE => "Server Device Failure",
        ACKNOWLEDGE => "Acknowledge",
        SERVER_DEVICE_BUSY => "Server Device Busy",
        NEGATIVE_ACKNOWLEDGE => "Negative Acknowledge",
        MEMORY_PARITY_ERROR => "Memory Parity Error",
        GATEWAY_PATH_UNAVAILABLE => "Gateway Path Unavailable",
        GATEWAY_TARGET_FAILED => "Gateway Target Device Failed to Respond",
        _ => "Unknown Exception",
    }
}
