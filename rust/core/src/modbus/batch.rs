//! A batch of requests to one unit over a [`TcpClient`]: sent up to `window`
//! at a time (pipelined when the device allows more than one in flight),
//! answered in any order by transaction id, finished by its first failure.
//!
//! The transport sends what [`Batch::start`] and [`Batch::receive`] append
//! to `out`, feeds every received byte to [`Batch::receive`], and stops at
//! [`Step::Done`] or [`Step::Failed`]. A batch given up (timeout, lost link)
//! must be [`Batch::abandon`]ed so that late answers count as stray frames.

use super::client::{ClientEvent, Rejection, TcpClient};
use super::pdu::{EncodeError, Request, Response};
use super::planner::Block;
use super::tcp::FrameError;

/// How a batch ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The device answered one request with a Modbus exception response.
    Exception {
        /// Function code of the request.
        function: u8,
        /// Exception code.
        code: u8,
    },
    /// A frame claimed to answer one of the batch's requests but does not.
    Rejected {
        /// The transaction it claimed to answer.
        transaction_id: u16,
        /// Unit id of the frame.
        unit: u8,
        /// Why it does not answer.
        reason: Rejection,
    },
}

/// What the transport does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait for more bytes (nothing was appended to `out`).
    Wait,
    /// Send what was appended to `out`, then wait for more bytes.
    Send,
    /// Every request was answered normally: see [`Batch::responses`].
    Done,
    /// The batch failed; its other requests are no longer pending.
    Failed(Failure),
}

/// Requests to one unit, with the responses received so far.
#[derive(Debug)]
pub struct Batch {
    unit: u8,
    requests: Vec<Request>,
    window: usize,
    ids: Vec<u16>,
    responses: Vec<Option<Response>>,
    answered: usize,
    strays: u64,
}

impl Batch {
    /// A batch of `requests` to `unit`, at most `window` (at least 1) in flight.
    ///
    /// # Errors
    /// [`EncodeError`] when a request breaks a specification limit.
    pub fn new(unit: u8, requests: Vec<Request>, window: usize) -> Result<Self, EncodeError> {
        let mut scratch = Vec::with_capacity(16);
        for request in &requests {
            scratch.clear();
            request.encode(&mut scratch)?;
        }
        let count = requests.len();
        Ok(Self {
            unit,
            requests,
            window: window.max(1),
            ids: Vec::with_capacity(count),
            responses: vec![None; count],
            answered: 0,
            strays: 0,
        })
    }

    /// Appends the first frames to `out`: [`Step::Send`], or [`Step::Done`]
    /// for an empty batch.
    pub fn start(&mut self, client: &mut TcpClient, out: &mut Vec<u8>) -> Step {
        if self.requests.is_empty() {
            return Step::Done;
        }
        self.encode(client, out);
        Step::Send
    }

    /// Encodes the requests the window lets out (checked in [`Batch::new`]).
    fn encode(&mut self, client: &mut TcpClient, out: &mut Vec<u8>) {
        let limit = (self.answered + self.window).min(self.requests.len());
        while self.ids.len() < limit {
            let request = self.requests[self.ids.len()].clone();
            let id = client
                .encode_request_into(self.unit, request, out)
                .expect("every request was encoded once in Batch::new");
            self.ids.push(id);
        }
    }

    /// Takes every complete frame `client` holds (feed it the received bytes
    /// first); frames for the next requests, if any, are appended to `out`.
    ///
    /// # Errors
    /// [`FrameError`] on a bad MBAP header: close the connection.
    pub fn receive(
        &mut self,
        client: &mut TcpClient,
        out: &mut Vec<u8>,
    ) -> Result<Step, FrameError> {
        let before = self.ids.len();
        while let Some(event) = client.next_event()? {
            let failure = match event {
                ClientEvent::Response {
                    transaction_id,
                    response,
                    ..
                } => {
                    let Some(index) = self.index_of(transaction_id) else {
                        self.strays += 1;
                        continue;
                    };
                    if let Response::Exception { function, code } = response {
                        Failure::Exception { function, code }
                    } else {
                        self.responses[index] = Some(response);
                        self.answered += 1;
                        continue;
                    }
                }
                ClientEvent::Rejected {
                    transaction_id,
                    unit,
                    reason,
                } => {
                    self.strays += 1;
                    match transaction_id {
                        Some(id) if self.index_of(id).is_some() => Failure::Rejected {
                            transaction_id: id,
                            unit,
                            reason,
                        },
                        _ => continue,
                    }
                }
            };
            self.abandon(client);
            return Ok(Step::Failed(failure));
        }
        if self.answered == self.requests.len() {
            return Ok(Step::Done);
        }
        self.encode(client, out);
        Ok(if self.ids.len() > before {
            Step::Send
        } else {
            Step::Wait
        })
    }

    fn index_of(&self, transaction_id: u16) -> Option<usize> {
        self.ids.iter().position(|&id| id == transaction_id)
    }

    /// Stops waiting for the batch's unanswered requests (a late answer is then stray).
    pub fn abandon(&self, client: &mut TcpClient) {
        for (id, response) in self.ids.iter().zip(&self.responses) {
            if response.is_none() {
                client.forget(*id);
            }
        }
    }

    /// The responses, in the order of the requests (`None`: not answered yet).
    #[must_use]
    pub fn responses(&self) -> &[Option<Response>] {
        &self.responses
    }

    /// Registers or bits of each read response, for [`super::planner::ReadPlan::decode`].
    #[must_use]
    pub fn blocks(&self) -> Vec<Option<Block<'_>>> {
        self.responses
            .iter()
            .map(|response| match response {
                Some(
                    Response::ReadHoldingRegisters { registers }
                    | Response::ReadInputRegisters { registers }
                    | Response::ReadWriteMultipleRegisters { registers },
                ) => Some(Block::Registers(registers)),
                Some(Response::ReadCoils { bits } | Response::ReadDiscreteInputs { bits }) => {
                    Some(Block::Bits(bits))
                }
                _ => None,
            })
            .collect()
    }

    /// Requests in flight at most.
    #[must_use]
    pub fn window(&self) -> usize {
        self.window
    }

    /// Requests answered so far.
    #[must_use]
    pub fn answered(&self) -> usize {
        self.answered
    }

    /// Frames received while the batch ran that answered none of its requests.
    #[must_use]
    pub fn strays(&self) -> u64 {
        self.strays
    }
}
