//! Function codes and the quantity limits of the Modbus application protocol
//! (MODBUS Application Protocol Specification V1.1b3, §6).

/// FC1, read coils.
pub const READ_COILS: u8 = 0x01;
/// FC2, read discrete inputs.
pub const READ_DISCRETE_INPUTS: u8 = 0x02;
/// FC3, read holding registers.
pub const READ_HOLDING_REGISTERS: u8 = 0x03;
/// FC4, read input registers.
pub const READ_INPUT_REGISTERS: u8 = 0x04;
/// FC5, write single coil.
pub const WRITE_SINGLE_COIL: u8 = 0x05;
/// FC6, write single register.
pub const WRITE_SINGLE_REGISTER: u8 = 0x06;
/// FC15, write multiple coils.
pub const WRITE_MULTIPLE_COILS: u8 = 0x0F;
/// FC16, write multiple registers.
pub const WRITE_MULTIPLE_REGISTERS: u8 = 0x10;
/// FC23, read/write multiple registers.
pub const READ_WRITE_MULTIPLE_REGISTERS: u8 = 0x17;
/// FC43, encapsulated interface transport (only MEI type 14 is supported).
pub const ENCAPSULATED_INTERFACE: u8 = 0x2B;
/// MEI type 14 of FC43: read device identification.
pub const MEI_READ_DEVICE_IDENTIFICATION: u8 = 0x0E;

/// Bit set in the function code of an exception response.
pub const EXCEPTION_FLAG: u8 = 0x80;

/// Largest PDU: 256-byte serial ADU minus address and CRC.
pub const MAX_PDU_LEN: usize = 253;
/// Most coils or discrete inputs one FC1/FC2 request may read.
pub const MAX_READ_BITS: u16 = 2000;
/// Most coils one FC15 request may write.
pub const MAX_WRITE_BITS: u16 = 1968;
/// Most registers one FC3/FC4 request may read (also the FC23 read part).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most registers one FC16 request may write.
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most registers the write part of one FC23 request may carry.
pub const MAX_READ_WRITE_REGISTERS: u16 = 121;

/// FC5 wire value of a coil switched on.
pub const COIL_ON: u16 = 0xFF00;
/// FC5 wire value of a coil switched off.
pub const COIL_OFF: u16 = 0x0000;

/// Whether `function` is one this codec encodes and decodes.
#[must_use]
pub const fn is_supported(function: u8) -> bool {
    matches!(
        function,
        READ_COILS
            | READ_DISCRETE_INPUTS
            | READ_HOLDING_REGISTERS
            | READ_INPUT_REGISTERS
            | WRITE_SINGLE_COIL
            | WRITE_SINGLE_REGISTER
            | WRITE_MULTIPLE_COILS
            | WRITE_MULTIPLE_REGISTERS
            | READ_WRITE_MULTIPLE_REGISTERS
            | ENCAPSULATED_INTERFACE
    )
}
