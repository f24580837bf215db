//! Read planner: the fields a device profile wants become the fewest read
//! requests that honour the spec limit, a maximum gap of unwanted registers,
//! and device quirks (forbidden ranges, a smaller block, single-register
//! reads). A [`ReadPlan`] then decodes all fields from the responses at once.

use super::function::{MAX_READ_REGISTERS, READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS};
use super::pdu::Request;
use super::values::{Codec, Value, ValueError};

/// A field: where its registers are and how they decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    /// Function code reading it: 3 (holding) or 4 (input registers).
    pub function: u8,
    /// First register.
    pub address: u16,
    /// Decoding.
    pub codec: Codec,
}

/// Device limits the planner honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most unwanted registers read to join two fields into one request.
    pub max_gap: u16,
    /// Most registers per request (at most 125).
    pub max_block: u16,
    /// Register ranges `(first, last)` (inclusive) the device refuses to read.
    pub forbidden: Vec<(u16, u16)>,
    /// The device reads one register per request only.
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
    /// 3 or 4.
    pub function: u8,
    /// First register.
    pub address: u16,
    /// Number of registers.
    pub count: u16,
}

impl Read {
    /// The request PDU.
    #[must_use]
    pub fn request(&self) -> Request {
        let (address, count) = (self.address, self.count);
        if self.function == READ_INPUT_REGISTERS {
            Request::ReadInputRegisters { address, count }
        } else {
            Request::ReadHoldingRegisters { address, count }
        }
    }
}

/// Compiled plan: the requests to send and, per field, where its registers
/// come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    fields: Vec<Field>,
    reads: Vec<Read>,
    /// Per field: (read index, offset) of its first register; its registers
    /// are contiguous in one read unless reads are single-register.
    sources: Vec<(usize, usize)>,
}

fn end(field: &Field) -> u32 {
    u32::from(field.address) + field.codec.kind.registers() as u32
}

fn touches_forbidden(first: u32, end: u32, limits: &Limits) -> bool {
    limits
        .forbidden
        .iter()
        .any(|&(a, b)| u32::from(a) < end && first <= u32::from(b))
}

impl ReadPlan {
    /// Plans the reads for `fields`.
    ///
    /// # Errors
    /// [`ValueError`] for a field with an unsupported function, one past
    /// register 65535, inside a forbidden range, or longer than a block.
    pub fn new(fields: Vec<Field>, limits: &Limits) -> Result<Self, ValueError> {
        let max_block = if limits.single_register {
            1
        } else {
            u32::from(limits.max_block.clamp(1, MAX_READ_REGISTERS))
        };
        for (i, field) in fields.iter().enumerate() {
            if !matches!(
                field.function,
                READ_HOLDING_REGISTERS | READ_INPUT_REGISTERS
            ) {
                return Err(ValueError(format!("field {i}: function must be 3 or 4")));
            }
            if end(field) > 0x1_0000 {
                return Err(ValueError(format!("field {i}: passes register 65535")));
            }
            if touches_forbidden(u32::from(field.address), end(field), limits) {
                return Err(ValueError(format!("field {i}: lies in a forbidden range")));
            }
            if !limits.single_register && end(field) - u32::from(field.address) > max_block {
                return Err(ValueError(format!(
                    "field {i}: longer than the maximum block"
                )));
            }
        }
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|&i| (fields[i].function, fields[i].address, end(&fields[i])));
        let mut reads: Vec<Read> = Vec::new();
        let mut sources = vec![(0, 0); fields.len()];
        for i in order {
            let field = &fields[i];
            let (first, last) = (u32::from(field.address), end(field));
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
            let joined = reads.last_mut().filter(|r| {
                let r_end = u32::from(r.address) + u32::from(r.count);
                r.function == field.function
                    && first <= r_end + u32::from(limits.max_gap)
                    && last.max(r_end) - u32::from(r.address) <= max_block
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
        &self.fields
    }

    /// Decodes every field, in the order given, from the registers of each
    /// planned read (`None` for a read that failed: its fields are missing).
    ///
    /// # Errors
    /// [`ValueError`] when the number of responses or of registers in one
    /// differs from the plan.
    pub fn decode(&self, responses: &[Option<&[u16]>]) -> Result<Vec<Value>, ValueError> {
        let mut values = Vec::with_capacity(self.fields.len());
        self.decode_each(responses, |value| values.push(value))?;
        Ok(values)
    }

    /// Like [`ReadPlan::decode`], handing each value to `sink` in field order.
    ///
    /// # Errors
    /// As [`ReadPlan::decode`].
    pub fn decode_each(
        &self,
        responses: &[Option<&[u16]>],
        mut sink: impl FnMut(Value),
    ) -> Result<(), ValueError> {
        if responses.len() != self.reads.len() {
            return Err(ValueError(format!(
                "plan has {} reads, got {} responses",
                self.reads.len(),
                responses.len()
            )));
        }
        for (read, response) in self.reads.iter().zip(responses) {
            if let Some(registers) = response {
                if registers.len() != usize::from(read.count) {
                    return Err(ValueError(format!(
                        "read at {} expects {} registers, got {}",
                        read.address,
                        read.count,
                        registers.len()
                    )));
                }
            }
        }
        let mut gathered = Vec::new();
        for (field, &(read, offset)) in self.fields.iter().zip(&self.sources) {
            let n = field.codec.kind.registers();
            let value = if self.reads[read].count == 1 && n > 1 {
                gathered.clear();
                let all = responses[read..read + n].iter().map(|r| r.map(|r| r[0]));
                match all.collect::<Option<Vec<u16>>>() {
                    Some(words) => {
                        gathered.extend(words);
                        field.codec.decode(&gathered)
                    }
                    None => Value::Missing,
                }
            } else {
                match responses[read] {
                    Some(registers) => field.codec.decode(&registers[offset..offset + n]),
                    None => Value::Missing,
                }
            };
            sink(value);
        }
        Ok(())
    }
}
