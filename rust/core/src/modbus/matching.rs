//! Request/response matching: a response must answer the request it claims
//! to answer (same function, quantities and echoes), or it is rejected.

use super::pdu::{Request, Response};

/// Why a response does not answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The response carries another function code.
    Function {
        /// Function code of the request.
        expected: u8,
        /// Function code of the response.
        got: u8,
    },
    /// The response carries another quantity than requested.
    Quantity {
        /// Quantity requested (for bits: whole bytes of bits).
        expected: usize,
        /// Quantity received.
        got: usize,
    },
    /// A write response does not echo the request.
    Echo,
    /// A device identification response for another read code.
    ReadCode,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Function { expected, got } => {
                write!(f, "response has function {got}, request had {expected}")
            }
            Self::Quantity { expected, got } => {
                write!(
                    f,
                    "response carries {got} items, request asked for {expected}"
                )
            }
            Self::Echo => f.write_str("write response does not echo the request"),
            Self::ReadCode => f.write_str("device identification response has another read code"),
        }
    }
}

impl std::error::Error for Mismatch {}

fn same_quantity(expected: usize, got: usize) -> Result<(), Mismatch> {
    if expected == got {
        Ok(())
    } else {
        Err(Mismatch::Quantity { expected, got })
    }
}

fn echoed(same: bool) -> Result<(), Mismatch> {
    if same {
        Ok(())
    } else {
        Err(Mismatch::Echo)
    }
}

/// Checks that `response` answers `request`; read-bit responses are cut to
/// the requested count (the wire pads them to whole bytes).
///
/// # Errors
/// [`Mismatch`] when the response answers some other request.
pub fn match_response(request: &Request, response: Response) -> Result<Response, Mismatch> {
    let expected = request.function();
    if response.function() != expected {
        return Err(Mismatch::Function {
            expected,
            got: response.function(),
        });
    }
    match (request, response) {
        (_, response @ Response::Exception { .. }) => Ok(response),
        (Request::ReadCoils { count, .. }, Response::ReadCoils { mut bits })
        | (Request::ReadDiscreteInputs { count, .. }, Response::ReadDiscreteInputs { mut bits }) => {
            let count = usize::from(*count);
            same_quantity(count.div_ceil(8) * 8, bits.len())?;
            bits.truncate(count);
            Ok(if expected == super::function::READ_COILS {
                Response::ReadCoils { bits }
            } else {
                Response::ReadDiscreteInputs { bits }
            })
        }
        (
            Request::ReadHoldingRegisters { count, .. }
            | Request::ReadInputRegisters { count, .. }
            | Request::ReadWriteMultipleRegisters {
                read_count: count, ..
            },
            response,
        ) => {
            let got = response.registers().map_or(0, <[u16]>::len);
            same_quantity(usize::from(*count), got)?;
            Ok(response)
        }
        (
            Request::WriteSingleCoil { address, value },
            response @ Response::WriteSingleCoil {
                address: a,
                value: v,
            },
        ) => {
            echoed(*address == a && *value == v)?;
            Ok(response)
        }
        (
            Request::WriteSingleRegister { address, value },
            response @ Response::WriteSingleRegister {
                address: a,
                value: v,
            },
        ) => {
            echoed(*address == a && *value == v)?;
            Ok(response)
        }
        (
            Request::WriteMultipleCoils { address, values },
            response @ Response::WriteMultipleCoils { address: a, count },
        ) => {
            echoed(*address == a && values.len() == usize::from(count))?;
            Ok(response)
        }
        (
            Request::WriteMultipleRegisters { address, values },
            response @ Response::WriteMultipleRegisters { address: a, count },
        ) => {
            echoed(*address == a && values.len() == usize::from(count))?;
            Ok(response)
        }
        (
            Request::ReadDeviceIdentification { read_code, .. },
            response @ Response::ReadDeviceIdentification { read_code: r, .. },
        ) => {
            if *read_code == r {
                Ok(response)
            } else {
                Err(Mismatch::ReadCode)
            }
        }
        (_, response) => Err(Mismatch::Function {
            expected,
            got: response.function(),
        }),
    }
}
