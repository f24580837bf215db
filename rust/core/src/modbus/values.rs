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
    /// Flags over this many registers (1 to 4), as an unsigned integer.
    Bitfield(u16),
    /// Text over this many registers; trailing NULs and spaces are stripped.
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

/// How the bytes of a string field encode characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// Two bytes per register, UTF-8 (ASCII in practice).
    #[default]
    Utf8,
    /// One character per register, UTF-16 big-endian.
    Utf16Be,
}

/// Which raw values mean "not available".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sentinel {
    /// Every value is a value.
    #[default]
    None,
    /// The type's usual marker: 0xFFFF (u16, one-register bitfield), 0x8000
    /// (i16), 0xFFFFFFFF (u32, two-register bitfield), 0x80000000 (i32), all
    /// ones (u64), 0x8000000000000000 (i64), NaN (floats), all NUL (strings).
    Standard,
    /// These raw register contents (before mask, shift, scale and offset).
    Raw(Vec<u64>),
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
    /// `f64`, `bitfield`, `string`); `count` is the number of registers,
    /// required for strings, 1 to 4 for bitfields (default 1), and either
    /// absent or the type's width for the rest.
    ///
    /// # Errors
    /// [`ValueError`] for an unknown name or a bad `count`.
    pub fn parse(name: &str, count: Option<u16>) -> Result<Self, ValueError> {
        let kind = match name {
            "u16" => Self::U16,
            "i16" => Self::I16,
            "u32" => Self::U32,
            "i32" => Self::I32,
            "u64" => Self::U64,
            "i64" => Self::I64,
            "f32" => Self::F32,
            "f64" => Self::F64,
            "bitfield" => match count.unwrap_or(1) {
                n @ 1..=4 => Self::Bitfield(n),
                _ => return Err(ValueError("a bitfield spans 1 to 4 registers".into())),
            },
            "string" => match count {
                Some(n @ 1..=125) => Self::String(n),
                _ => {
                    return Err(ValueError(
                        "a string needs a count of 1..=125 registers".into(),
                    ))
                }
            },
            other => return Err(ValueError(format!("unknown value type {other:?}"))),
        };
        match count {
            Some(n) if usize::from(n) != kind.registers() => Err(ValueError(format!(
                "type {name} spans {} register(s), not {n}",
                kind.registers()
            ))),
            _ => Ok(kind),
        }
    }

    /// Number of registers the value occupies.
    #[must_use]
    pub const fn registers(self) -> usize {
        match self {
            Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 | Self::I64 | Self::F64 => 4,
            Self::Bitfield(n) | Self::String(n) => n as usize,
        }
    }

    fn standard_sentinel(self) -> Option<u64> {
        match self {
            Self::U16 | Self::Bitfield(1) => Some(0xFFFF),
            Self::I16 => Some(0x8000),
            Self::U32 | Self::Bitfield(2) => Some(0xFFFF_FFFF),
            Self::I32 => Some(0x8000_0000),
            Self::U64 | Self::Bitfield(4) => Some(u64::MAX),
            Self::I64 => Some(0x8000_0000_0000_0000),
            Self::F32 | Self::F64 | Self::Bitfield(_) | Self::String(_) => None,
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

impl FromStr for Charset {
    type Err = ValueError;

    fn from_str(name: &str) -> Result<Self, ValueError> {
        match name {
            "utf-8" => Ok(Self::Utf8),
            "utf-16-be" => Ok(Self::Utf16Be),
            other => Err(ValueError(format!(
                "unknown charset {other:?} (utf-8 or utf-16-be)"
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

/// How one field is decoded from its registers:
/// value = ((raw >> shift) & mask) × scale + offset.
#[derive(Debug, Clone, PartialEq)]
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
    /// Bits kept after the shift (integers only).
    pub mask: Option<u64>,
    /// Right shift of the raw value (integers only).
    pub shift: u8,
    /// Character encoding of strings.
    pub charset: Charset,
}

impl Codec {
    /// A codec of `kind` in ABCD order with no scaling, sentinel or mask.
    #[must_use]
    pub const fn new(kind: ValueType) -> Self {
        Self {
            kind,
            order: WordOrder::Abcd,
            scale: 1.0,
            offset: 0.0,
            sentinel: Sentinel::None,
            mask: None,
            shift: 0,
            charset: Charset::Utf8,
        }
    }

    const fn masked(&self) -> bool {
        self.mask.is_some() || self.shift != 0
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
        self.decode_with(registers, None)
    }

    /// Like [`Codec::decode`], with a power-of-ten `exponent` (a SunSpec
    /// scale factor) multiplying the scale: the result is then a float.
    ///
    /// # Panics
    /// When `registers` is shorter than the type.
    #[must_use]
    pub fn decode_with(&self, registers: &[u16], exponent: Option<i64>) -> Value {
        let registers = &registers[..self.kind.registers()];
        if let ValueType::String(_) = self.kind {
            return self.decode_text(registers);
        }
        let raw = self.raw(registers);
        let missing = match &self.sentinel {
            Sentinel::None => false,
            Sentinel::Raw(values) => values.contains(&raw),
            Sentinel::Standard => match self.kind {
                ValueType::F32 => f32::from_bits(raw as u32).is_nan(),
                ValueType::F64 => f64::from_bits(raw).is_nan(),
                kind => kind.standard_sentinel() == Some(raw),
            },
        };
        if missing {
            return Value::Missing;
        }
        let is_float = matches!(self.kind, ValueType::F32 | ValueType::F64);
        let number = if self.masked() && !is_float {
            Value::UInt((raw >> self.shift) & self.mask.unwrap_or(u64::MAX))
        } else {
            self.number(raw)
        };
        if !self.scaled() && exponent.is_none() {
            return number;
        }
        let x = match number {
            Value::UInt(v) => v as f64,
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
            _ => unreachable!("numbers only"),
        };
        Value::Float(x * self.scale * power_of_ten(exponent) + self.offset)
    }

    fn number(&self, raw: u64) -> Value {
        match self.kind {
            ValueType::U16 | ValueType::U32 | ValueType::U64 | ValueType::Bitfield(_) => {
                Value::UInt(raw)
            }
            ValueType::I16 => Value::Int(i64::from(raw as u16 as i16)),
            ValueType::I32 => Value::Int(i64::from(raw as u32 as i32)),
            ValueType::I64 => Value::Int(raw as i64),
            ValueType::F32 => Value::Float(f64::from(f32::from_bits(raw as u32))),
            ValueType::F64 => Value::Float(f64::from_bits(raw)),
            ValueType::String(_) => unreachable!("strings are decoded apart"),
        }
    }

    fn decode_text(&self, registers: &[u16]) -> Value {
        let swap = |r: u16| {
            if self.order.swaps_bytes() {
                r.swap_bytes()
            } else {
                r
            }
        };
        let all_nul = registers.iter().all(|&r| r == 0);
        let missing = match &self.sentinel {
            Sentinel::None => false,
            Sentinel::Standard => all_nul,
            Sentinel::Raw(values) => registers.iter().all(|&r| values.contains(&u64::from(r))),
        };
        if missing {
            return Value::Missing;
        }
        let text = match self.charset {
            Charset::Utf8 => {
                let bytes: Vec<u8> = registers
                    .iter()
                    .flat_map(|&r| swap(r).to_be_bytes())
                    .collect();
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                String::from_utf8_lossy(&bytes[..end]).into_owned()
            }
            Charset::Utf16Be => {
                let units: Vec<u16> = registers
                    .iter()
                    .map(|&r| swap(r))
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            }
        };
        Value::Text(text.trim_end_matches(' ').to_owned())
    }

    /// Encodes `value` into registers, undoing scale and offset (rounded to
    /// the nearest integer for integer types).
    ///
    /// # Errors
    /// [`ValueError`] when the value does not fit the type.
    pub fn encode(&self, value: &Value) -> Result<Vec<u16>, ValueError> {
        self.encode_with(value, None)
    }

    /// Like [`Codec::encode`], with a power-of-ten `exponent` multiplying the
    /// scale (see [`Codec::decode_with`]).
    ///
    /// # Errors
    /// [`ValueError`] when the value does not fit the type.
    pub fn encode_with(
        &self,
        value: &Value,
        exponent: Option<i64>,
    ) -> Result<Vec<u16>, ValueError> {
        let unfit = || ValueError(format!("{value:?} does not fit {:?}", self.kind));
        if let ValueType::String(len) = self.kind {
            let Value::Text(text) = value else {
                return Err(unfit());
            };
            let mut words: Vec<u16> = match self.charset {
                Charset::Utf8 => text
                    .as_bytes()
                    .chunks(2)
                    .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)]))
                    .collect(),
                Charset::Utf16Be => text.encode_utf16().collect(),
            };
            if words.len() > usize::from(len) {
                return Err(unfit());
            }
            words.resize(usize::from(len), 0);
            if self.order.swaps_bytes() {
                words.iter_mut().for_each(|w| *w = w.swap_bytes());
            }
            return Ok(words);
        }
        if self.masked() {
            return Err(ValueError(
                "a masked or shifted field cannot be written whole".into(),
            ));
        }
        let raw: u64 = match (self.kind, value) {
            (ValueType::F32, _) => {
                u64::from((self.unscale(value, exponent).ok_or_else(unfit)? as f32).to_bits())
            }
            (ValueType::F64, _) => self.unscale(value, exponent).ok_or_else(unfit)?.to_bits(),
            (kind, _) => {
                let x = match value {
                    Value::Int(v) if !self.scaled() && exponent.is_none() => i128::from(*v),
                    Value::UInt(v) if !self.scaled() && exponent.is_none() => i128::from(*v),
                    _ => {
                        let x = self.unscale(value, exponent).ok_or_else(unfit)?.round();
                        if !x.is_finite() {
                            return Err(unfit());
                        }
                        x as i128
                    }
                };
                let (min, max): (i128, i128) = match kind {
                    ValueType::U16 => (0, 0xFFFF),
                    ValueType::I16 => (-0x8000, 0x7FFF),
                    ValueType::U32 => (0, 0xFFFF_FFFF),
                    ValueType::I32 => (-0x8000_0000, 0x7FFF_FFFF),
                    ValueType::U64 => (0, i128::from(u64::MAX)),
                    ValueType::Bitfield(n) => (0, (1i128 << (16 * n)) - 1),
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

    fn unscale(&self, value: &Value, exponent: Option<i64>) -> Option<f64> {
        let x = match value {
            Value::Int(v) => *v as f64,
            Value::UInt(v) => *v as f64,
            Value::Float(v) => *v,
            _ => return None,
        };
        Some((x - self.offset) / (self.scale * power_of_ten(exponent)))
    }
}

fn power_of_ten(exponent: Option<i64>) -> f64 {
    exponent.map_or(1.0, |e| 10f64.powi(e.clamp(-300, 300) as i32))
}
