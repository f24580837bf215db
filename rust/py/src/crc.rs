//! CRC-16/MODBUS bindings.

use pyo3::prelude::*;

use crate::errors::CoreError;

/// CRC-16/MODBUS of `data`.
#[pyfunction]
pub(crate) fn crc16(data: &[u8]) -> u16 {
    hubgate_core::crc::crc16(data)
}

/// Checks the trailing CRC (low byte first) of a whole RTU frame.
#[pyfunction]
pub(crate) fn check_crc(frame: &[u8]) -> Result<(), CoreError> {
    Ok(hubgate_core::crc::check_crc(frame)?)
}
