//! Typed register values: integer and float types over one to four
//! registers, ASCII strings, bit fields and single bits; the four byte/word
//! orders; scale and offset; "not available" sentinels decoded as missing.

use core::str::FromStr;

/// The type of a value held in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit.
    U32,
    /// Signed 32-bit.
    I32,
    /// Unsigned 64-bit.
    U64,
    /// Signed 64-bit.
    I64,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
    /// 16 flags as an unsigned integer.
    Bitfield16,
    /// 32 flags as an unsigned integer.
    Bitfield32,
    /// One bit (0 = least significant) of a register, as a boolean.
    Bit(u8),
    /// ASCII text over this many registers, two characters each; trailing
    /// NULs and spaces are stripped.
    String(u16),
}

/// Order of the bytes of a multi-register value, named after the order in
/// which the bytes A (most significant) to D arrive. Within one register
/// BADC and DCBA swap the two bytes; CDAB and DCBA put the low word first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WordOrder {
    /// Big-endian, high word first (SunSpec).
    #[default]
    Abcd,
    /// Low word first, bytes big-endian in each register.
    Cdab,
    /// High word first, bytes swapped in each register.
    Badc,
    /// Little-endian: low word first, bytes swapped.
    Dcba,
}

/// Which raw values mean "not available".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sentinel {
    /// Every value is a value.
    #[default]
    None,
    /// The type's usual marker: 0xFFFF (u16, bitfield16), 0x8000 (i16),
    /// 0xFFFFFFFF (u32, bitfield32), 0x80000000 (i32), all ones (u64),
    /// 0x8000000000000000 (i64), NaN (floats), all NUL (strings).
    Standard,
    /// This raw register content (before scale and offset).
    Raw(u64),
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Signed and unscaled.
    Int(i64),
    /// Unsigned and unscaled.
    UInt(u64),
    /// A float, or any value with scale or offset.
    Float(f64),
    /// A single bit.
    Bool(bool),
    /// A string.
    Text(String),
    /// The sentinel was found: not available.
    Missing,
}

/// A value name, word order or field that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl core::fmt::Display for ValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

impl ValueType {
    /// Parses a type name (`u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`,
    /// `f64`, `bitfield16`, `bitfield32`, `bit`, `string`); `bit` takes the bit
    /// index and `string` its length in registers from `size`.
    ///
    /// # Errors
    /// [`ValueError`] for an unknown name or a missing or bad `size`.
    pub fn parse(name: &str, size: Option<u16>) -> Result<Self, ValueError> {
        let kind = match name {
            "u16" => Self::U16,
            "i16" => Self::I16,
            "u32" => Self::U32,
            "i32" => Self::I32,
            "u64" => Self::U64,
            "i64" => Self::I64,
            "f32" => Self::F32,
            "f64" => Self::F64,
            "bitfield16" => Self::Bitfield16,
            "bitfield32" => Self::Bitfield32,
            "bit" => match size {
                Some(bit @ 0..=15) => Self::Bit(bit as u8),
                _ => return Err(ValueError("type bit needs a bit index 0..=15".into())),
            },
            "string" => match size {
                Some(len @ 1..=125) => Self::String(len),
                _ => {
                    return Err(ValueError(
                        "type string needs a length of 1..=125 registers".into(),
                    ))
                }
            },
            other => return Err(ValueError(format!("unknown value type {other:?}"))),
        };
        if size.is_some() && !matches!(kind, Self::Bit(_) | Self::String(_)) {
            return Err(ValueError(format!("type {name} takes no size")));
        }
        Ok(kind)
    }

    /// Number of registers the value occupies.
    #[must_use]
    pub const fn registers(self) -> usize {
        match self {
            Self::U16 | Self::I16 | Self::Bitfield16 | Self::Bit(_) => 1,
            Self::U32 | Self::I32 | Self::F32 | Self::Bitfield32 => 2,
            Self::U64 | Self::I64 | Self::F64 => 4,
            Self::String(len) => len as usize,
        }
    }

    fn standard_sentinel(self) -> Option<u64> {
        match self {
            Self::U16 | Self::Bitfield16 => Some(0xFFFF),
            Self::I16 => Some(0x8000),
            Self::U32 | Self::Bitfield32 => Some(0xFFFF_FFFF),
            Self::I32 => Some(0x8000_0000),
            Self::U64 => Some(u64::MAX),
            Self::I64 => Some(0x8000_0000_0000_0000),
            Self::F32 | Self::F64 | Self::Bit(_) | Self::String(_) => None,
        }
    }
}

impl FromStr for WordOrder {
    type Err = ValueError;

    fn from_str(name: &str) -> Result<Self, ValueError> {
        match name {
            "ABCD" => Ok(Self::Abcd),
            "CDAB" => Ok(Self::Cdab),
            "BADC" => Ok(Self::Badc),
            "DCBA" => Ok(Self::Dcba),
            other => Err(ValueError(format!(
                "unknown word order {other:?} (ABCD, CDAB, BADC or DCBA)"
            ))),
        }
    }
}

impl WordOrder {
    const fn swaps_bytes(self) -> bool {
        matches!(self, Self::Badc | Self::Dcba)
    }

    const fn low_word_first(self) -> bool {
        matches!(self, Self::Cdab | Self::Dcba)
    }
}

/// How one field is decoded from its registers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Codec {
    /// Value type.
    pub kind: ValueType,
    /// Byte and word order.
    pub order: WordOrder,
    /// Multiplier applied to the raw number.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
    /// Raw values meaning "not available".
    pub sentinel: Sentinel,
}

impl Codec {
    /// A codec of `kind` in ABCD order with no scaling or sentinel.
    #[must_use]
    pub const fn new(kind: ValueType) -> Self {
        Self {
            kind,
            order: WordOrder::Abcd,
            scale: 1.0,
            offset: 0.0,
            sentinel: Sentinel::None,
        }
    }

    fn scaled(&self) -> bool {
        self.scale != 1.0 || self.offset != 0.0
    }

    /// Raw bits of a numeric value (1, 2 or 4 registers), high byte first.
    fn raw(&self, registers: &[u16]) -> u64 {
        let word = |r: u16| {
            if self.order.swaps_bytes() {
                u64::from(r.swap_bytes())
            } else {
                u64::from(r)
            }
        };
        if self.order.low_word_first() {
            registers
                .iter()
                .rev()
                .fold(0, |acc, &r| acc << 16 | word(r))
        } else {
            registers.iter().fold(0, |acc, &r| acc << 16 | word(r))
        }
    }

    /// Decodes `registers`, which hold exactly this value.
    ///
    /// # Panics
    /// When `registers` is shorter than the type.
    #[must_use]
    pub fn decode(&self, registers: &[u16]) -> Value {
        let registers = &registers[..self.kind.registers()];
        if let ValueType::String(_) = self.kind {
            return self.decode_text(registers);
        }
        let raw = self.raw(registers);
        let missing = match self.sentinel {
            Sentinel::None => false,
            Sentinel::Raw(value) => raw == value,
            Sentinel::Standard => match self.kind {
                ValueType::F32 => f32::from_bits(raw as u32).is_nan(),
                ValueType::F64 => f64::from_bits(raw).is_nan(),
                kind => kind.standard_sentinel() == Some(raw),
            },
        };
        if missing {
            return Value::Missing;
        }
        let number = match self.kind {
            ValueType::Bit(bit) => return Value::Bool(raw >> bit & 1 == 1),
            ValueType::U16 | ValueType::U32 | ValueType::U64 => Value::UInt(raw),
            ValueType::Bitfield16 | ValueType::Bitfield32 => return Value::UInt(raw),
            ValueType::I16 => Value::Int(i64::from(raw as u16 as i16)),
            ValueType::I32 => Value::Int(i64::from(raw as u32 as i32)),
            ValueType::I64 => Value::Int(raw as i64),
            ValueType::F32 => Value::Float(f64::from(f32::from_bits(raw as u32))),
            ValueType::F64 => Value::Float(f64::from_bits(raw)),
            ValueType::String(_) => unreachable!("strings are decoded above"),
        };
        if !self.scaled() {
            return number;
        }
        let x = match number {
            Value::UInt(v) => v as f64,
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
            _ => unreachable!("numbers only"),
        };
        Value::Float(x * self.scale + self.offset)
    }

    fn decode_text(&self, registers: &[u16]) -> Value {
        let bytes: Vec<u8> = registers
            .iter()
            .flat_map(|&r| {
                let [a, b] = r.to_be_bytes();
                if self.order.swaps_bytes() {
                    [b, a]
                } else {
                    [a, b]
                }
            })
            .collect();
        let missing = match self.sentinel {
            Sentinel::None => false,
            Sentinel::Standard => bytes.iter().all(|&b| b == 0),
            Sentinel::Raw(value) => bytes.iter().all(|&b| u64::from(b) == value),
        };
        if missing {
            return Value::Missing;
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text: String = bytes[..end]
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect();
        Value::Text(text.trim_end_matches(' ').to_owned())
    }

    /// Encodes `value` into registers, undoing scale and offset (rounded to
    /// the nearest integer for integer types).
    ///
    /// # Errors
    /// [`ValueError`] when the value does not fit the type.
    pub fn encode(&self, value: &Value) -> Result<Vec<u16>, ValueError> {
        let unfit = || ValueError(format!("{value:?} does not fit {:?}", self.kind));
        if let ValueType::String(len) = self.kind {
            let Value::Text(text) = value else {
                return Err(unfit());
            };
            let size = usize::from(len) * 2;
            if !text.is_ascii() || text.len() > size {
                return Err(unfit());
            }
            let mut bytes = text.as_bytes().to_vec();
            bytes.resize(size, 0);
            return Ok(bytes
                .chunks_exact(2)
                .map(|p| {
                    let r = u16::from_be_bytes([p[0], p[1]]);
                    if self.order.swaps_bytes() {
                        r.swap_bytes()
                    } else {
                        r
                    }
                })
                .collect());
        }
        let raw: u64 = match (self.kind, value) {
            (ValueType::Bit(bit), Value::Bool(on)) => u64::from(*on) << bit,
            (ValueType::F32, _) => {
                u64::from((self.unscale(value).ok_or_else(unfit)? as f32).to_bits())
            }
            (ValueType::F64, _) => self.unscale(value).ok_or_else(unfit)?.to_bits(),
            (kind, _) => {
                let x = match value {
                    Value::Int(v) if !self.scaled() => i128::from(*v),
                    Value::UInt(v) if !self.scaled() => i128::from(*v),
                    _ => {
                        let x = self.unscale(value).ok_or_else(unfit)?.round();
                        if !x.is_finite() {
                            return Err(unfit());
                        }
                        x as i128
                    }
                };
                let (min, max): (i128, i128) = match kind {
                    ValueType::U16 | ValueType::Bitfield16 => (0, 0xFFFF),
                    ValueType::I16 => (-0x8000, 0x7FFF),
                    ValueType::U32 | ValueType::Bitfield32 => (0, 0xFFFF_FFFF),
                    ValueType::I32 => (-0x8000_0000, 0x7FFF_FFFF),
                    ValueType::U64 => (0, i128::from(u64::MAX)),
                    _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
                };
                if x < min || x > max {
                    return Err(unfit());
                }
                x as u64
            }
        };
        let n = self.kind.registers();
        let mut words: Vec<u16> = (0..n)
            .rev()
            .map(|i| {
                let w = (raw >> (16 * i)) as u16;
                if self.order.swaps_bytes() {
                    w.swap_bytes()
                } else {
                    w
                }
            })
            .collect();
        if self.order.low_word_first() {
            words.reverse();
        }
        Ok(words)
    }

    fn unscale(&self, value: &Value) -> Option<f64> {
        let x = match value {
            Value::Int(v) => *v as f64,
            Value::UInt(v) => *v as f64,
            Value::Float(v) => *v,
            _ => return None,
        };
        Some((x - self.offset) / self.scale)
    }
}
