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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::matching::Mismatch;
    use crate::modbus::server::{ServerEvent, TcpServer};

    fn reads(blocks: &[(u16, u16)]) -> Vec<Request> {
        blocks
            .iter()
            .map(|&(address, count)| Request::ReadHoldingRegisters { address, count })
            .collect()
    }

    /// The device side: the requests in `frames`, as (transaction id, request).
    fn requests_in(frames: &[u8]) -> Vec<(u16, Request)> {
        let mut server = TcpServer::new();
        server.receive_data(frames);
        let mut found = Vec::new();
        while let Some(event) = server.next_event().unwrap() {
            let ServerEvent::Request {
                transaction_id,
                request,
                ..
            } = event
            else {
                panic!("not a request: {event:?}");
            };
            found.push((transaction_id, request));
        }
        found
    }

    /// The right answer to a register read: each register holds its address.
    fn answer(transaction_id: u16, request: &Request) -> Vec<u8> {
        let Request::ReadHoldingRegisters { address, count } = *request else {
            panic!("not a read")
        };
        let registers = (address..address + count).collect();
        TcpServer::encode_response(
            transaction_id,
            1,
            &Response::ReadHoldingRegisters { registers },
        )
        .unwrap()
    }

    #[test]
    fn a_window_of_two_pipelines_and_takes_answers_in_any_order() {
        let mut client = TcpClient::new();
        let mut batch = Batch::new(1, reads(&[(0, 2), (10, 2), (20, 2)]), 2).unwrap();
        let mut out = Vec::new();
        assert_eq!(batch.start(&mut client, &mut out), Step::Send);
        let sent = requests_in(&out);
        assert_eq!(sent.len(), 2);
        out.clear();
        client.receive_data(&answer(sent[1].0, &sent[1].1));
        assert_eq!(batch.receive(&mut client, &mut out), Ok(Step::Send));
        let third = requests_in(&out);
        assert_eq!(third.len(), 1);
        out.clear();
        client.receive_data(&answer(third[0].0, &third[0].1));
        client.receive_data(&answer(sent[0].0, &sent[0].1));
        assert_eq!(batch.receive(&mut client, &mut out), Ok(Step::Done));
        assert!(out.is_empty());
        let blocks = batch.blocks();
        assert_eq!(
            blocks,
            [
                Some(Block::Registers(&[0, 1])),
                Some(Block::Registers(&[10, 11])),
                Some(Block::Registers(&[20, 21]))
            ]
        );
        assert_eq!(
            (batch.answered(), batch.strays(), client.pending()),
            (3, 0, 0)
        );
    }

    #[test]
    fn one_at_a_time_waits_for_each_answer_and_for_whole_frames() {
        let mut client = TcpClient::new();
        let mut batch = Batch::new(1, reads(&[(0, 1), (5, 1)]), 1).unwrap();
        let mut out = Vec::new();
        batch.start(&mut client, &mut out);
        let first = requests_in(&out);
        assert_eq!(first.len(), 1);
        out.clear();
        let frame = answer(first[0].0, &first[0].1);
        client.receive_data(&frame[..5]);
        assert_eq!(batch.receive(&mut client, &mut out), Ok(Step::Wait));
        client.receive_data(&frame[5..]);
        assert_eq!(batch.receive(&mut client, &mut out), Ok(Step::Send));
        let second = requests_in(&out);
        assert_eq!(
            second[0].1,
            Request::ReadHoldingRegisters {
                address: 5,
                count: 1
            }
        );
    }

    #[test]
    fn an_exception_fails_the_batch_and_later_answers_are_strays() {
        let mut client = TcpClient::new();
        let mut batch = Batch::new(1, reads(&[(0, 1), (5, 1)]), 2).unwrap();
        let mut out = Vec::new();
        batch.start(&mut client, &mut out);
        let sent = requests_in(&out);
        out.clear();
        let exception = Response::Exception {
            function: 3,
            code: 2,
        };
        client.receive_data(&TcpServer::encode_response(sent[0].0, 1, &exception).unwrap());
        client.receive_data(&answer(sent[1].0, &sent[1].1));
        assert_eq!(
            batch.receive(&mut client, &mut out),
            Ok(Step::Failed(Failure::Exception {
                function: 3,
                code: 2
            }))
        );
        assert_eq!(client.pending(), 0);
        assert_eq!(
            client.next_event().unwrap(),
            Some(ClientEvent::Rejected {
                transaction_id: None,
                unit: 1,
                reason: Rejection::UnknownTransaction
            })
        );
    }

    #[test]
    fn a_wrong_answer_under_a_batch_transaction_fails_it_and_strays_are_counted() {
        let mut client = TcpClient::new();
        let mut batch = Batch::new(1, reads(&[(0, 3)]), 1).unwrap();
        let mut out = Vec::new();
        batch.start(&mut client, &mut out);
        let sent = requests_in(&out);
        client.receive_data(&answer(sent[0].0.wrapping_add(7), &sent[0].1));
        let short = Request::ReadHoldingRegisters {
            address: 0,
            count: 2,
        };
        client.receive_data(&answer(sent[0].0, &short));
        let step = batch.receive(&mut client, &mut out).unwrap();
        assert_eq!(
            step,
            Step::Failed(Failure::Rejected {
                transaction_id: sent[0].0,
                unit: 1,
                reason: Rejection::Mismatch(Mismatch::Quantity {
                    expected: 3,
                    got: 2
                })
            })
        );
        assert_eq!(batch.strays(), 2);
    }

    #[test]
    fn an_abandoned_batch_leaves_nothing_pending_and_bad_requests_are_refused() {
        let mut client = TcpClient::new();
        let mut batch = Batch::new(1, reads(&[(0, 1), (5, 1), (9, 1)]), 3).unwrap();
        batch.start(&mut client, &mut Vec::new());
        assert_eq!(client.pending(), 3);
        batch.abandon(&mut client);
        assert_eq!(client.pending(), 0);
        assert!(Batch::new(1, reads(&[(0, 1), (0, 126)]), 1).is_err());
        let mut empty = Batch::new(1, Vec::new(), 1).unwrap();
        assert_eq!(empty.start(&mut client, &mut Vec::new()), Step::Done);
    }
}
