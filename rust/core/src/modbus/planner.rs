//! Read planner: the fields a device profile wants become the fewest read
//! requests that honour the spec limits, a maximum gap of unwanted registers,
//! and device quirks (forbidden ranges, a smaller block, single-register
//! reads). A [`ReadPlan`] then decodes all fields from the responses at once,
//! applying SunSpec scale-factor registers.

use super::function::{
    MAX_READ_BITS, MAX_READ_REGISTERS, READ_COILS, READ_DISCRETE_INPUTS, READ_HOLDING_REGISTERS,
    READ_INPUT_REGISTERS,
};
use super::pdu::Request;
use super::values::{Codec, Value, ValueError, ValueType};

/// A field: where its registers (or its bit) are and how they decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// 1 (coil), 2 (discrete input), 3 (holding) or 4 (input registers).
    pub function: u8,
    /// First register, or the bit.
    pub address: u16,
    /// Decoding of registers (unused for bits).
    pub codec: Codec,
    /// Address of an i16 register, read with the same function, holding a
    /// power-of-ten exponent applied to the value (SunSpec scale factor).
    pub scale_factor: Option<u16>,
    /// Bits: the value is true when the bit reads 0.
    pub invert: bool,
}

impl Field {
    /// A holding-register field of `kind` at `address`.
    #[must_use]
    pub const fn holding(address: u16, kind: ValueType) -> Self {
        Self {
            function: READ_HOLDING_REGISTERS,
            address,
            codec: Codec::new(kind),
            scale_factor: None,
            invert: false,
        }
    }

    const fn is_bit(&self) -> bool {
        matches!(self.function, READ_COILS | READ_DISCRETE_INPUTS)
    }

    /// Registers (or bits) the field spans.
    #[must_use]
    pub const fn width(&self) -> usize {
        if self.is_bit() {
            1
        } else {
            self.codec.kind.registers()
        }
    }

    fn end(&self) -> u32 {
        u32::from(self.address) + self.width() as u32
    }
}

/// Device limits the planner honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most unwanted registers (or bits) read to join two fields into one request.
    pub max_gap: u16,
    /// Most registers per request (at most 125; bit reads stay within 2000).
    pub max_block: u16,
    /// Register ranges `(first, last)` (inclusive) the device refuses to read.
    pub forbidden: Vec<(u16, u16)>,
    /// The device reads one register (or bit) per request only.
    pub single_register: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_gap: 0,
            max_block: MAX_READ_REGISTERS,
            forbidden: Vec::new(),
            single_register: false,
        }
    }
}

/// One planned read request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// 1 to 4.
    pub function: u8,
    /// First register or bit.
    pub address: u16,
    /// Number of registers or bits.
    pub count: u16,
}

impl Read {
    /// The request PDU.
    #[must_use]
    pub fn request(&self) -> Request {
        let (address, count) = (self.address, self.count);
        match self.function {
            READ_COILS => Request::ReadCoils { address, count },
            READ_DISCRETE_INPUTS => Request::ReadDiscreteInputs { address, count },
            READ_INPUT_REGISTERS => Request::ReadInputRegisters { address, count },
            _ => Request::ReadHoldingRegisters { address, count },
        }
    }
}

/// What one read brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block<'a> {
    /// Registers of an FC3/FC4 read.
    Registers(&'a [u16]),
    /// Bits of an FC1/FC2 read.
    Bits(&'a [bool]),
}

impl Block<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Registers(r) => r.len(),
            Self::Bits(b) => b.len(),
        }
    }
}

/// Compiled plan: the requests to send and, per field, where its registers
/// come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    /// The fields asked for, then the scale-factor registers they need.
    fields: Vec<Field>,
    asked: usize,
    /// Per field: index of the field holding its scale factor.
    exponents: Vec<Option<usize>>,
    reads: Vec<Read>,
    /// Per field: (read index, offset) of its first register; its registers
    /// are contiguous in one read unless reads are single-register.
    sources: Vec<(usize, usize)>,
}

fn touches_forbidden(first: u32, end: u32, limits: &Limits) -> bool {
    limits
        .forbidden
        .iter()
        .any(|&(a, b)| u32::from(a) < end && first <= u32::from(b))
}

fn check(i: usize, field: &Field, limits: &Limits, max_block: u32) -> Result<(), ValueError> {
    let fail = |what: &str| Err(ValueError(format!("field {i}: {what}")));
    if !(READ_COILS..=READ_INPUT_REGISTERS).contains(&field.function) {
        return fail("function must be 1, 2, 3 or 4");
    }
    if field.end() > 0x1_0000 {
        return fail("passes address 65535");
    }
    if touches_forbidden(u32::from(field.address), field.end(), limits) {
        return fail("lies in a forbidden range");
    }
    if !limits.single_register && field.width() as u32 > max_block {
        return fail("longer than the maximum block");
    }
    if field.is_bit() && field.scale_factor.is_some() {
        return fail("a bit has no scale factor");
    }
    Ok(())
}

impl ReadPlan {
    /// Plans the reads for `fields`.
    ///
    /// # Errors
    /// [`ValueError`] for a field with an unsupported function, one past
    /// address 65535, inside a forbidden range, or longer than a block.
    pub fn new(mut fields: Vec<Field>, limits: &Limits) -> Result<Self, ValueError> {
        let asked = fields.len();
        let mut exponents = vec![None; asked];
        for i in 0..asked {
            if let Some(address) = fields[i].scale_factor {
                let sf = Field {
                    function: fields[i].function,
                    ..Field::holding(address, ValueType::I16)
                };
                let at = fields[asked..].iter().position(|f| *f == sf);
                exponents[i] = Some(
                    asked
                        + at.unwrap_or_else(|| {
                            fields.push(sf);
                            fields.len() - asked - 1
                        }),
                );
            }
        }
        let register_block = if limits.single_register {
            1
        } else {
            u32::from(limits.max_block.clamp(1, MAX_READ_REGISTERS))
        };
        let bit_block = if limits.single_register {
            1
        } else {
            u32::from(MAX_READ_BITS)
        };
        for (i, field) in fields.iter().enumerate() {
            let block = if field.is_bit() {
                bit_block
            } else {
                register_block
            };
            check(i, field, limits, block)?;
        }
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|&i| (fields[i].function, fields[i].address, fields[i].end()));
        let mut reads: Vec<Read> = Vec::new();
        let mut sources = vec![(0, 0); fields.len()];
        for i in order {
            let field = &fields[i];
            let (first, last) = (u32::from(field.address), field.end());
            if limits.single_register {
                for address in first..last {
                    let covered = reads.last().is_some_and(|r| {
                        r.function == field.function && u32::from(r.address) == address
                    });
                    if !covered {
                        reads.push(Read {
                            function: field.function,
                            address: address as u16,
                            count: 1,
                        });
                    }
                    if address == first {
                        sources[i] = (reads.len() - 1, 0);
                    }
                }
                continue;
            }
            let block = if field.is_bit() {
                bit_block
            } else {
                register_block
            };
            let joined = reads.last_mut().filter(|r| {
                let r_end = u32::from(r.address) + u32::from(r.count);
                r.function == field.function
                    && first <= r_end + u32::from(limits.max_gap)
                    && last.max(r_end) - u32::from(r.address) <= block
                    && !touches_forbidden(r_end, first, limits)
            });
            match joined {
                Some(read) => {
                    let r_end = u32::from(read.address) + u32::from(read.count);
                    read.count = (last.max(r_end) - u32::from(read.address)) as u16;
                    let offset = (first - u32::from(read.address)) as usize;
                    sources[i] = (reads.len() - 1, offset);
                }
                None => {
                    reads.push(Read {
                        function: field.function,
                        address: field.address,
                        count: (last - first) as u16,
                    });
                    sources[i] = (reads.len() - 1, 0);
                }
            }
        }
        Ok(Self {
            fields,
            asked,
            exponents,
            reads,
            sources,
        })
    }

    /// The planned reads, in the order their responses are passed to
    /// [`ReadPlan::decode`].
    #[must_use]
    pub fn reads(&self) -> &[Read] {
        &self.reads
    }

    /// The fields, in the order given.
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        &self.fields[..self.asked]
    }

    fn check_responses(&self, responses: &[Option<Block<'_>>]) -> Result<(), ValueError> {
        if responses.len() != self.reads.len() {
            return Err(ValueError(format!(
                "plan has {} reads, got {} responses",
                self.reads.len(),
                responses.len()
            )));
        }
        for (read, response) in self.reads.iter().zip(responses) {
            let Some(block) = response else { continue };
            let bits = matches!(read.function, READ_COILS | READ_DISCRETE_INPUTS);
            if bits != matches!(block, Block::Bits(_)) {
                return Err(ValueError(format!(
                    "read at {} (FC{}) got {}",
                    read.address,
                    read.function,
                    if bits { "registers" } else { "bits" }
                )));
            }
            if block.len() != usize::from(read.count) {
                return Err(ValueError(format!(
                    "read at {} expects {} items, got {}",
                    read.address,
                    read.count,
                    block.len()
                )));
            }
        }
        Ok(())
    }

    fn decode_one(
        &self,
        index: usize,
        responses: &[Option<Block<'_>>],
        exponent: Option<i64>,
    ) -> Value {
        let field = &self.fields[index];
        let (read, offset) = self.sources[index];
        let n = field.width();
        if self.reads[read].count == 1 && n > 1 {
            let words: Option<Vec<u16>> = responses[read..read + n]
                .iter()
                .map(|r| match r {
                    Some(Block::Registers(r)) => Some(r[0]),
                    _ => None,
                })
                .collect();
            return words.map_or(Value::Missing, |w| field.codec.decode_with(&w, exponent));
        }
        match responses[read] {
            Some(Block::Registers(registers)) => field
                .codec
                .decode_with(&registers[offset..offset + n], exponent),
            Some(Block::Bits(bits)) => Value::Bool(bits[offset] != field.invert),
            None => Value::Missing,
        }
    }

    /// Decodes every field, in the order given, from what each planned read
    /// brought back (`None` for a read that failed: its fields are missing).
    ///
    /// # Errors
    /// [`ValueError`] when the number of responses, their kind or their
    /// length differs from the plan.
    pub fn decode(&self, responses: &[Option<Block<'_>>]) -> Result<Vec<Value>, ValueError> {
        self.check_responses(responses)?;
        let factors: Vec<Value> = (self.asked..self.fields.len())
            .map(|i| self.decode_one(i, responses, None))
            .collect();
        Ok((0..self.asked)
            .map(
                |i| match self.exponents[i].map(|at| &factors[at - self.asked]) {
                    None => self.decode_one(i, responses, None),
                    Some(Value::Int(sf)) if *sf != -0x8000 => {
                        self.decode_one(i, responses, Some(*sf))
                    }
                    Some(_) => Value::Missing,
                },
            )
            .collect())
    }
}
