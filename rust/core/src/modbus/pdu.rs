//! Protocol data units: requests and responses of the supported function
//! codes, both directions (a client encodes requests and decodes responses, a
//! server decodes requests and encodes responses). Encoding enforces the
//! specification's quantity limits and never produces an oversize PDU.

use super::exception::{ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, ILLEGAL_FUNCTION};
use super::function::*;

/// A request PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FC1.
    ReadCoils {
        /// First coil.
        address: u16,
        /// Number of coils, 1–2000.
        count: u16,
    },
    /// FC2.
    ReadDiscreteInputs {
        /// First input.
        address: u16,
        /// Number of inputs, 1–2000.
        count: u16,
    },
    /// FC3.
    ReadHoldingRegisters {
        /// First register.
        address: u16,
        /// Number of registers, 1–125.
        count: u16,
    },
    /// FC4.
    ReadInputRegisters {
        /// First register.
        address: u16,
        /// Number of registers, 1–125.
        count: u16,
    },
    /// FC5.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On or off.
        value: bool,
    },
    /// FC6.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// Its new value.
        value: u16,
    },
    /// FC15.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// 1–1968 coil states.
        values: Vec<bool>,
    },
    /// FC16.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// 1–123 register values.
        values: Vec<u16>,
    },
    /// FC23: the write is performed before the read.
    ReadWriteMultipleRegisters {
        /// First register read.
        read_address: u16,
        /// Number of registers read, 1–125.
        read_count: u16,
        /// First register written.
        write_address: u16,
        /// 1–121 register values written.
        values: Vec<u16>,
    },
    /// FC43 / MEI 14.
    ReadDeviceIdentification {
        /// 1 basic, 2 regular, 3 extended (stream), 4 one specific object.
        read_code: u8,
        /// First object to return.
        object_id: u8,
    },
}

/// A response PDU, including exception responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FC1: whole bytes of coils (a multiple of 8) until matched to its request.
    ReadCoils {
        /// Coil states, least significant bit of the first byte first.
        bits: Vec<bool>,
    },
    /// FC2, like [`Response::ReadCoils`].
    ReadDiscreteInputs {
        /// Input states.
        bits: Vec<bool>,
    },
    /// FC3.
    ReadHoldingRegisters {
        /// Register values.
        registers: Vec<u16>,
    },
    /// FC4.
    ReadInputRegisters {
        /// Register values.
        registers: Vec<u16>,
    },
    /// FC5: echo of the request.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On or off.
        value: bool,
    },
    /// FC6: echo of the request.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// Its new value.
        value: u16,
    },
    /// FC15.
    WriteMultipleCoils {
        /// First coil written.
        address: u16,
        /// Number of coils written.
        count: u16,
    },
    /// FC16.
    WriteMultipleRegisters {
        /// First register written.
        address: u16,
        /// Number of registers written.
        count: u16,
    },
    /// FC23: the registers read.
    ReadWriteMultipleRegisters {
        /// Register values.
        registers: Vec<u16>,
    },
    /// FC43 / MEI 14.
    ReadDeviceIdentification {
        /// Read code of the request.
        read_code: u8,
        /// Conformity level of the device.
        conformity: u8,
        /// Whether another request is needed for the remaining objects.
        more_follows: bool,
        /// First object of the next request when `more_follows`.
        next_object_id: u8,
        /// Object ids with their values.
        objects: Vec<(u8, Vec<u8>)>,
    },
    /// An exception response.
    Exception {
        /// Function code of the request (without the 0x80 flag).
        function: u8,
        /// Exception code, see [`super::exception`].
        code: u8,
    },
}

/// A request or response that cannot be encoded within the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A quantity outside `1..=max`.
    Quantity {
        /// Function code.
        function: u8,
        /// Quantity asked for.
        count: usize,
        /// Largest quantity allowed.
        max: u16,
    },
    /// Address plus quantity goes past 65535.
    AddressOverflow {
        /// Function code.
        function: u8,
        /// First address.
        address: u16,
        /// Quantity.
        count: usize,
    },
    /// The encoded PDU would exceed 253 bytes.
    TooLong {
        /// Length it would have.
        len: usize,
    },
    /// A field value the specification does not allow.
    Value {
        /// Function code.
        function: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Quantity {
                function,
                count,
                max,
            } => write!(f, "FC{function}: quantity {count} is outside 1..={max}"),
            Self::AddressOverflow {
                function,
                address,
                count,
            } => write!(
                f,
                "FC{function}: address {address} + quantity {count} passes 65535"
            ),
            Self::TooLong { len } => write!(f, "PDU of {len} bytes exceeds {MAX_PDU_LEN}"),
            Self::Value { function, reason } => write!(f, "FC{function}: {reason}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A PDU that does not decode, with the exception code a server answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduError {
    /// Function code of the PDU (0 for an empty PDU).
    pub function: u8,
    /// Exception code for the answer: 01 unsupported function, 02 address, 03 value.
    pub exception: u8,
    /// What is wrong.
    pub reason: &'static str,
}

impl core::fmt::Display for PduError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FC{}: {}", self.function, self.reason)
    }
}

impl std::error::Error for PduError {}

fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn push16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn check_quantity(function: u8, address: u16, count: usize, max: u16) -> Result<(), EncodeError> {
    if count == 0 || count > usize::from(max) {
        return Err(EncodeError::Quantity {
            function,
            count,
            max,
        });
    }
    if usize::from(address) + count > 0x1_0000 {
        return Err(EncodeError::AddressOverflow {
            function,
            address,
            count,
        });
    }
    Ok(())
}

fn push_bits(out: &mut Vec<u8>, bits: &[bool]) {
    for chunk in bits.chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |acc, (i, &bit)| acc | (u8::from(bit) << i));
        out.push(byte);
    }
}

fn unpack_bits(bytes: &[u8], count: usize) -> Vec<bool> {
    (0..count)
        .map(|i| bytes[i / 8] >> (i % 8) & 1 == 1)
        .collect()
}

fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect()
}

fn push_registers(out: &mut Vec<u8>, values: &[u16]) {
    out.reserve(values.len() * 2);
    for &value in values {
        push16(out, value);
    }
}

fn byte_len(len: usize) -> u8 {
    // Callers bound `len` by the quantity limits, which keep it under 256.
    u8::try_from(len).unwrap_or(u8::MAX)
}

impl Request {
    /// Function code of the request.
    #[must_use]
    pub const fn function(&self) -> u8 {
        match self {
            Self::ReadCoils { .. } => READ_COILS,
            Self::ReadDiscreteInputs { .. } => READ_DISCRETE_INPUTS,
            Self::ReadHoldingRegisters { .. } => READ_HOLDING_REGISTERS,
            Self::ReadInputRegisters { .. } => READ_INPUT_REGISTERS,
            Self::WriteSingleCoil { .. } => WRITE_SINGLE_COIL,
            Self::WriteSingleRegister { .. } => WRITE_SINGLE_REGISTER,
            Self::WriteMultipleCoils { .. } => WRITE_MULTIPLE_COILS,
            Self::WriteMultipleRegisters { .. } => WRITE_MULTIPLE_REGISTERS,
            Self::ReadWriteMultipleRegisters { .. } => READ_WRITE_MULTIPLE_REGISTERS,
            Self::ReadDeviceIdentification { .. } => ENCAPSULATED_INTERFACE,
        }
    }

    /// Appends the encoded PDU to `out`; on error `out` is left unchanged.
    ///
    /// # Errors
    /// [`EncodeError`] when a quantity or value is outside the specification.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let function = self.function();
        match self {
            Self::ReadCoils { address, count } | Self::ReadDiscreteInputs { address, count } => {
                check_quantity(function, *address, usize::from(*count), MAX_READ_BITS)?;
                out.push(function);
                push16(out, *address);
                push16(out, *count);
            }
            Self::ReadHoldingRegisters { address, count }
            | Self::ReadInputRegisters { address, count } => {
                check_quantity(function, *address, usize::from(*count), MAX_READ_REGISTERS)?;
                out.push(function);
                push16(out, *address);
                push16(out, *count);
            }
            Self::WriteSingleCoil { address, value } => {
                out.push(function);
                push16(out, *address);
                push16(out, if *value { COIL_ON } else { COIL_OFF });
            }
            Self::WriteSingleRegister { address, value } => {
                out.push(function);
                push16(out, *address);
                push16(out, *value);
            }
            Self::WriteMultipleCoils { address, values } => {
                check_quantity(function, *address, values.len(), MAX_WRITE_BITS)?;
                out.push(function);
                push16(out, *address);
                push16(out, values.len() as u16);
                out.push(byte_len(values.len().div_ceil(8)));
                push_bits(out, values);
            }
            Self::WriteMultipleRegisters { address, values } => {
                check_quantity(function, *address, values.len(), MAX_WRITE_REGISTERS)?;
                out.push(function);
                push16(out, *address);
                push16(out, values.len() as u16);
                out.push(byte_len(values.len() * 2));
                push_registers(out, values);
            }
            Self::ReadWriteMultipleRegisters {
                read_address,
                read_count,
                write_address,
                values,
            } => {
                check_quantity(
                    function,
                    *read_address,
                    usize::from(*read_count),
                    MAX_READ_REGISTERS,
                )?;
                check_quantity(
                    function,
                    *write_address,
                    values.len(),
                    MAX_READ_WRITE_REGISTERS,
                )?;
                out.push(function);
                push16(out, *read_address);
                push16(out, *read_count);
                push16(out, *write_address);
                push16(out, values.len() as u16);
                out.push(byte_len(values.len() * 2));
                push_registers(out, values);
            }
            Self::ReadDeviceIdentification {
                read_code,
                object_id,
            } => {
                if !(1..=4).contains(read_code) {
                    return Err(EncodeError::Value {
                        function,
                        reason: "read device id code must be 1..=4",
                    });
                }
                out.extend_from_slice(&[
                    function,
                    MEI_READ_DEVICE_IDENTIFICATION,
                    *read_code,
                    *object_id,
                ]);
            }
        }
        Ok(())
    }

    /// Decodes a request PDU, as a server receives it.
    ///
    /// # Errors
    /// [`PduError`] carrying the exception code to answer with.
    pub fn decode(pdu: &[u8]) -> Result<Self, PduError> {
        let Some((&function, data)) = pdu.split_first() else {
            return Err(PduError {
                function: 0,
                exception: ILLEGAL_FUNCTION,
                reason: "empty PDU",
            });
        };
        let fail = |exception, reason| PduError {
            function,
            exception,
            reason,
        };
        let malformed = fail(ILLEGAL_DATA_VALUE, "malformed request");
        let quantity = |address: u16, count: usize, max: u16| {
            if count == 0 || count > usize::from(max) {
                Err(fail(ILLEGAL_DATA_VALUE, "quantity out of range"))
            } else if usize::from(address) + count > 0x1_0000 {
                Err(fail(
                    ILLEGAL_DATA_ADDRESS,
                    "address plus quantity passes 65535",
                ))
            } else {
                Ok(())
            }
        };
        match function {
            READ_COILS
            | READ_DISCRETE_INPUTS
            | READ_HOLDING_REGISTERS
            | READ_INPUT_REGISTERS
            | WRITE_SINGLE_COIL
            | WRITE_SINGLE_REGISTER => {
                if data.len() != 4 {
                    return Err(malformed);
                }
                let (address, value) = (be16(data, 0), be16(data, 2));
                Ok(match function {
                    READ_COILS | READ_DISCRETE_INPUTS => {
                        quantity(address, usize::from(value), MAX_READ_BITS)?;
                        if function == READ_COILS {
                            Self::ReadCoils {
                                address,
                                count: value,
                            }
                        } else {
                            Self::ReadDiscreteInputs {
                                address,
                                count: value,
                            }
                        }
                    }
                    READ_HOLDING_REGISTERS | READ_INPUT_REGISTERS => {
                        quantity(address, usize::from(value), MAX_READ_REGISTERS)?;
                        if function == READ_HOLDING_REGISTERS {
                            Self::ReadHoldingRegisters {
                                address,
                                count: value,
                            }
                        } else {
                            Self::ReadInputRegisters {
                                address,
                                count: value,
                            }
                        }
                    }
                    WRITE_SINGLE_COIL => Self::WriteSingleCoil {
                        address,
                        value: match value {
                            COIL_ON => true,
                            COIL_OFF => false,
                            _ => {
                                return Err(fail(
                                    ILLEGAL_DATA_VALUE,
                                    "coil value must be 0xFF00 or 0",
                                ))
                            }
                        },
                    },
                    _ => Self::WriteSingleRegister { address, value },
                })
            }
            WRITE_MULTIPLE_COILS | WRITE_MULTIPLE_REGISTERS => {
                if data.len() < 5 {
                    return Err(malformed);
                }
                let (address, count) = (be16(data, 0), usize::from(be16(data, 2)));
                let byte_count = usize::from(data[4]);
                let values = &data[5..];
                let (max, expected) = if function == WRITE_MULTIPLE_COILS {
                    (MAX_WRITE_BITS, count.div_ceil(8))
                } else {
                    (MAX_WRITE_REGISTERS, count * 2)
                };
                quantity(address, count, max)?;
                if byte_count != expected || values.len() != byte_count {
                    return Err(malformed);
                }
                Ok(if function == WRITE_MULTIPLE_COILS {
                    Self::WriteMultipleCoils {
                        address,
                        values: unpack_bits(values, count),
                    }
                } else {
                    Self::WriteMultipleRegisters {
                        address,
                        values: registers(values),
                    }
                })
            }
            READ_WRITE_MULTIPLE_REGISTERS => {
                if data.len() < 9 {
                    return Err(malformed);
                }
                let read_address = be16(data, 0);
                let read_count = be16(data, 2);
                let write_address = be16(data, 4);
                let write_count = usize::from(be16(data, 6));
                quantity(read_address, usize::from(read_count), MAX_READ_REGISTERS)?;
                quantity(write_address, write_count, MAX_READ_WRITE_REGISTERS)?;
                let values = &data[9..];
                if usize::from(data[8]) != write_count * 2 || values.len() != write_count * 2 {
                    return Err(malformed);
                }
                Ok(Self::ReadWriteMultipleRegisters {
                    read_address,
                    read_count,
                    write_address,
                    values: registers(values),
                })
            }
            ENCAPSULATED_INTERFACE => match data {
                [MEI_READ_DEVICE_IDENTIFICATION, read_code @ 1..=4, object_id] => {
                    Ok(Self::ReadDeviceIdentification {
                        read_code: *read_code,
                        object_id: *object_id,
                    })
                }
                [MEI_READ_DEVICE_IDENTIFICATION, _, _] => Err(fail(
                    ILLEGAL_DATA_VALUE,
                    "read device id code must be 1..=4",
                )),
                [MEI_READ_DEVICE_IDENTIFICATION, ..] => Err(malformed),
                _ => Err(fail(ILLEGAL_FUNCTION, "unsupported MEI type")),
            },
            _ => Err(fail(ILLEGAL_FUNCTION, "unsupported function code")),
        }
    }
}

impl Response {
    /// Function code of the request this answers (without the exception flag).
    #[must_use]
    pub const fn function(&self) -> u8 {
        match self {
            Self::ReadCoils { .. } => READ_COILS,
            Self::ReadDiscreteInputs { .. } => READ_DISCRETE_INPUTS,
            Self::ReadHoldingRegisters { .. } => READ_HOLDING_REGISTERS,
            Self::ReadInputRegisters { .. } => READ_INPUT_REGISTERS,
            Self::WriteSingleCoil { .. } => WRITE_SINGLE_COIL,
            Self::WriteSingleRegister { .. } => WRITE_SINGLE_REGISTER,
            Self::WriteMultipleCoils { .. } => WRITE_MULTIPLE_COILS,
            Self::WriteMultipleRegisters { .. } => WRITE_MULTIPLE_REGISTERS,
            Self::ReadWriteMultipleRegisters { .. } => READ_WRITE_MULTIPLE_REGISTERS,
            Self::ReadDeviceIdentification { .. } => ENCAPSULATED_INTERFACE,
            Self::Exception { function, .. } => *function,
        }
    }

    /// The registers of an FC3, FC4 or FC23 response.
    #[must_use]
    pub fn registers(&self) -> Option<&[u16]> {
        match self {
            Self::ReadHoldingRegisters { registers }
            | Self::ReadInputRegisters { registers }
            | Self::ReadWriteMultipleRegisters { registers } => Some(registers),
            _ => None,
        }
    }

    /// Appends the encoded PDU to `out`; on error `out` is left unchanged.
    ///
    /// # Errors
    /// [`EncodeError`] when a quantity or value is outside the specification.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let function = self.function();
        match self {
            Self::ReadCoils { bits } | Self::ReadDiscreteInputs { bits } => {
                check_quantity(function, 0, bits.len(), MAX_READ_BITS)?;
                out.push(function);
                out.push(byte_len(bits.len().div_ceil(8)));
                push_bits(out, bits);
            }
            Self::ReadHoldingRegisters { registers }
            | Self::ReadInputRegisters { registers }
            | Self::ReadWriteMultipleRegisters { registers } => {
                check_quantity(function, 0, registers.len(), MAX_READ_REGISTERS)?;
                out.push(function);
                out.push(byte_len(registers.len() * 2));
                push_registers(out, registers);
            }
            Self::WriteSingleCoil { address, value } => {
                out.push(function);
                push16(out, *address);
                push16(out, if *value { COIL_ON } else { COIL_OFF });
            }
            Self::WriteSingleRegister {
                address,
                value: count,
            }
            | Self::WriteMultipleCoils { address, count }
            | Self::WriteMultipleRegisters { address, count } => {
                out.push(function);
                push16(out, *address);
                push16(out, *count);
            }
            Self::ReadDeviceIdentification {
                read_code,
                conformity,
                more_follows,
                next_object_id,
                objects,
            } => {
                let len = 7 + objects.iter().map(|(_, v)| 2 + v.len()).sum::<usize>();
                if len > MAX_PDU_LEN {
                    return Err(EncodeError::TooLong { len });
                }
                out.extend_from_slice(&[
                    function,
                    MEI_READ_DEVICE_IDENTIFICATION,
                    *read_code,
                    *conformity,
                    if *more_follows { 0xFF } else { 0x00 },
                    *next_object_id,
                    byte_len(objects.len()),
                ]);
                for (id, value) in objects {
                    out.push(*id);
                    out.push(byte_len(value.len()));
                    out.extend_from_slice(value);
                }
            }
            Self::Exception { function, code } => {
                // A request with function code 0 or 0x80 and above names no function: the
                // only answer is illegal function, with the 0x80 flag set (0x83 stays 0x83).
                let unknown = *function == 0 || *function & EXCEPTION_FLAG != 0;
                if *code == 0 || (unknown && *code != ILLEGAL_FUNCTION) {
                    return Err(EncodeError::Value {
                        function: *function,
                        reason: "an exception needs a nonzero code, and illegal function (1) \
                                 to answer function code 0 or 0x80 and above",
                    });
                }
                out.extend_from_slice(&[function | EXCEPTION_FLAG, *code]);
            }
        }
        Ok(())
    }

    /// Decodes a response PDU, as a client receives it.
    ///
    /// # Errors
    /// [`PduError`] when the PDU is malformed or its function unsupported.
    pub fn decode(pdu: &[u8]) -> Result<Self, PduError> {
        let Some((&function, data)) = pdu.split_first() else {
            return Err(PduError {
                function: 0,
                exception: ILLEGAL_FUNCTION,
                reason: "empty PDU",
            });
        };
        let fail = |reason| PduError {
            function,
            exception: ILLEGAL_DATA_VALUE,
            reason,
        };
        if function & EXCEPTION_FLAG != 0 {
            return match data {
                [code] => Ok(Self::Exception {
                    function: function & !EXCEPTION_FLAG,
                    code: *code,
                }),
                _ => Err(fail("malformed exception response")),
            };
        }
        match function {
            READ_COILS | READ_DISCRETE_INPUTS => {
                let bytes = counted(data).ok_or_else(|| fail("byte count does not match"))?;
                let bits = unpack_bits(bytes, bytes.len() * 8);
                Ok(if function == READ_COILS {
                    Self::ReadCoils { bits }
                } else {
                    Self::ReadDiscreteInputs { bits }
                })
            }
            READ_HOLDING_REGISTERS | READ_INPUT_REGISTERS | READ_WRITE_MULTIPLE_REGISTERS => {
                let bytes = counted(data)
                    .filter(|b| b.len() % 2 == 0)
                    .ok_or_else(|| fail("byte count does not match"))?;
                let registers = registers(bytes);
                Ok(match function {
                    READ_HOLDING_REGISTERS => Self::ReadHoldingRegisters { registers },
                    READ_INPUT_REGISTERS => Self::ReadInputRegisters { registers },
                    _ => Self::ReadWriteMultipleRegisters { registers },
                })
            }
            WRITE_SINGLE_COIL
            | WRITE_SINGLE_REGISTER
            | WRITE_MULTIPLE_COILS
            | WRITE_MULTIPLE_REGISTERS => {
                if data.len() != 4 {
                    return Err(fail("malformed write response"));
                }
                let (address, value) = (be16(data, 0), be16(data, 2));
                Ok(match function {
                    WRITE_SINGLE_COIL => Self::WriteSingleCoil {
                        address,
                        value: match value {
                            COIL_ON => true,
                            COIL_OFF => false,
                            _ => return Err(fail("coil value must be 0xFF00 or 0")),
                        },
                    },
                    WRITE_SINGLE_REGISTER => Self::WriteSingleRegister { address, value },
                    WRITE_MULTIPLE_COILS => Self::WriteMultipleCoils {
                        address,
                        count: value,
                    },
                    _ => Self::WriteMultipleRegisters {
                        address,
                        count: value,
                    },
                })
            }
            ENCAPSULATED_INTERFACE => decode_device_identification(data)
                .ok_or_else(|| fail("malformed read device identification response")),
            _ => Err(PduError {
                function,
                exception: ILLEGAL_FUNCTION,
                reason: "unsupported function code",
            }),
        }
    }
}

/// The bytes after a byte count, when the count matches exactly.
fn counted(data: &[u8]) -> Option<&[u8]> {
    let (&count, rest) = data.split_first()?;
    (count != 0 && usize::from(count) == rest.len()).then_some(rest)
}

/// Length of an FC43/14 response PDU starting at `pdu[0]` (the function
/// code), `None` while `pdu` is too short to tell, `Some(Err)` when malformed.
pub(crate) fn device_identification_len(pdu: &[u8]) -> Option<Result<usize, ()>> {
    if pdu.len() < 7 {
        return None;
    }
    if pdu[1] != MEI_READ_DEVICE_IDENTIFICATION {
        return Some(Err(()));
    }
    let mut at = 7;
    for _ in 0..pdu[6] {
        let len = usize::from(*pdu.get(at + 1)?);
        at += 2 + len;
        if at > MAX_PDU_LEN {
            return Some(Err(()));
        }
    }
    Some(Ok(at))
}

fn decode_device_identification(data: &[u8]) -> Option<Response> {
    let mut pdu = Vec::with_capacity(data.len() + 1);
    pdu.push(ENCAPSULATED_INTERFACE);
    pdu.extend_from_slice(data);
    let len = device_identification_len(&pdu)?.ok()?;
    if len != pdu.len() || !matches!(data[3], 0x00 | 0xFF) {
        return None;
    }
    let mut objects = Vec::with_capacity(usize::from(data[5]));
    let mut at = 6;
    while at < data.len() {
        let (id, len) = (data[at], usize::from(data[at + 1]));
        objects.push((id, data[at + 2..at + 2 + len].to_vec()));
        at += 2 + len;
    }
    Some(Response::ReadDeviceIdentification {
        read_code: data[1],
        conformity: data[2],
        more_follows: data[3] == 0xFF,
        next_object_id: data[4],
        objects,
    })
}
