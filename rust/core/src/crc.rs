//! CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF), as used
//! by Modbus RTU frames, where it is appended low byte first.

const POLY: u16 = 0xA001;

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u16; 256] = build_table();

/// CRC-16/MODBUS of `data`.
#[must_use]
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0xFFFF, |crc, &byte| {
        (crc >> 8) ^ TABLE[usize::from((crc ^ u16::from(byte)) & 0xFF)]
    })
}

/// Why an RTU frame failed its CRC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcError {
    /// The frame is shorter than the two CRC bytes plus one byte of content.
    TooShort {
        /// Length of the frame that was given.
        len: usize,
    },
    /// The CRC carried by the frame differs from the one computed over it.
    Mismatch {
        /// CRC computed over the frame's content.
        computed: u16,
        /// CRC found in the frame's last two bytes (low byte first).
        received: u16,
    },
}

impl core::fmt::Display for CrcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { len } => {
                write!(f, "frame of {len} bytes is too short to carry a CRC")
            }
            Self::Mismatch { computed, received } => write!(
                f,
                "CRC mismatch: frame carries 0x{received:04X}, content gives 0x{computed:04X}"
            ),
        }
    }
}

impl std::error::Error for CrcError {}

/// Appends the CRC of `frame` to it, low byte first, as RTU sends it.
pub fn append_crc(frame: &mut Vec<u8>) {
    let crc = crc16(frame);
    frame.extend_from_slice(&crc.to_le_bytes());
}

/// Checks the trailing CRC of a whole RTU frame.
///
/// # Errors
/// [`CrcError::TooShort`] below three bytes, [`CrcError::Mismatch`] when the
/// CRC does not match.
pub fn check_crc(frame: &[u8]) -> Result<(), CrcError> {
    if frame.len() < 3 {
        return Err(CrcError::TooShort { len: frame.len() });
    }
    let (content, tail) = frame.split_at(frame.len() - 2);
    let received = u16::from_le_bytes([tail[0], tail[1]]);
    let computed = crc16(content);
    if computed == received {
        Ok(())
    } else {
        Err(CrcError::Mismatch { computed, received })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0x4B37);
    }

    #[test]
    fn empty_input_is_initial_value() {
        assert_eq!(crc16(b""), 0xFFFF);
    }

    #[test]
    fn golden_read_holding_registers_request() {
        // Unit 1, FC3, address 0, count 10: the CRC 0xCDC5 is sent as C5 CD.
        let mut frame = vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0A];
        append_crc(&mut frame);
        assert_eq!(frame[6..], [0xC5, 0xCD]);
        assert_eq!(check_crc(&frame), Ok(()));
    }

    #[test]
    fn flipped_bit_is_detected() {
        let mut frame = vec![0x11, 0x03, 0x00, 0x6B, 0x00, 0x03];
        append_crc(&mut frame);
        frame[2] ^= 0x01;
        assert!(matches!(check_crc(&frame), Err(CrcError::Mismatch { .. })));
    }

    #[test]
    fn too_short_frame() {
        assert_eq!(check_crc(&[0x01, 0x02]), Err(CrcError::TooShort { len: 2 }));
    }

    proptest::proptest! {
        #[test]
        fn appended_crc_always_checks(data in proptest::collection::vec(proptest::num::u8::ANY, 1..300)) {
            let mut frame = data.clone();
            append_crc(&mut frame);
            proptest::prop_assert_eq!(check_crc(&frame), Ok(()));
        }
    }
}
