//! Golden frames (protocols.md §2.5 and pymodbus-verified ones), every frame
//! fed split at every byte, and arbitrary bytes that must never panic.

use super::client::{ClientEvent, Rejection, RtuClient, TcpClient};
use super::matching::Mismatch;
use super::pdu::{EncodeError, Request, Response};
use super::planner::{Block, Field, Limits, ReadPlan};
use super::server::{RtuServer, ServerEvent, TcpServer};
use super::tcp::FrameError;
use super::values::{Charset, Codec, Sentinel, Value, ValueType, WordOrder};
use proptest::prelude::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

const FC3_40000_X10: Request = Request::ReadHoldingRegisters {
    address: 40000,
    count: 10,
};

fn registers_1000() -> Vec<u16> {
    (1000..1010).collect()
}

fn tcp_client_at(tid: u16) -> TcpClient {
    let mut client = TcpClient::new();
    for _ in 1..tid {
        let (id, _) = client.encode_request(1, FC3_40000_X10).unwrap();
        client.forget(id);
    }
    client
}

#[test]
fn golden_tcp_request() {
    let mut client = tcp_client_at(7);
    let (tid, frame) = client.encode_request(1, FC3_40000_X10).unwrap();
    assert_eq!(tid, 7);
    assert_eq!(frame, hex("00 07 00 00 00 06 01 03 9c 40 00 0a"));
}

#[test]
fn golden_rtu_request() {
    let (_, frame) = RtuClient::new().encode_request(1, FC3_40000_X10).unwrap();
    assert_eq!(frame, hex("01 03 9c 40 00 0a ea 49"));
}

fn rtu_response_1000() -> Vec<u8> {
    RtuServer::encode_response(
        1,
        &Response::ReadHoldingRegisters {
            registers: registers_1000(),
        },
    )
    .unwrap()
}

#[test]
fn golden_rtu_response() {
    let frame = rtu_response_1000();
    assert_eq!(frame[..5], hex("01 03 14 03 e8"));
    assert_eq!(frame[frame.len() - 4..], hex("03 f1 c7 64"));
}

#[test]
fn golden_exceptions() {
    let exception = Response::Exception {
        function: 3,
        code: 2,
    };
    assert_eq!(
        TcpServer::encode_response(9, 1, &exception).unwrap(),
        hex("00 09 00 00 00 03 01 83 02")
    );
    assert_eq!(
        RtuServer::encode_response(1, &exception).unwrap(),
        hex("01 83 02 c0 f1")
    );
}

#[test]
fn unknown_function_codes_are_answered_illegal_function() {
    // Function code 0 and codes with the exception flag name no function: a server
    // answers them exception 1 with the flag set, and nothing else.
    for (function, answer) in [
        (0x00, "80 01"),
        (0x80, "80 01"),
        (0x83, "83 01"),
        (0xFF, "ff 01"),
    ] {
        let exception = Response::Exception { function, code: 1 };
        assert_eq!(
            TcpServer::encode_response(5, 1, &exception).unwrap(),
            hex(&format!("00 05 00 00 00 03 01 {answer}"))
        );
        for code in [0, 2, 4] {
            let other = Response::Exception { function, code };
            assert!(
                TcpServer::encode_response(5, 1, &other).is_err(),
                "{function:#x} {code}"
            );
        }
    }
    let zero = Response::Exception {
        function: 3,
        code: 0,
    };
    assert!(TcpServer::encode_response(5, 1, &zero).is_err());
}

/// Feeds `frame` to a fresh client in two pieces split at every byte, and
/// byte by byte; each time exactly one event results.
fn tcp_split_everywhere(request: &Request, frame: &[u8]) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    let mut cuts: Vec<Vec<usize>> = (0..=frame.len()).map(|cut| vec![cut]).collect();
    cuts.push((1..frame.len()).collect());
    for cut in cuts {
        let mut client = tcp_client_at(7);
        client.encode_request(1, request.clone()).unwrap();
        let mut got = Vec::new();
        let mut last = 0;
        for &at in cut.iter().chain([frame.len()].iter()) {
            client.receive_data(&frame[last..at]);
            last = at;
            while let Some(event) = client.next_event().unwrap() {
                got.push(event);
            }
        }
        assert_eq!(got.len(), 1, "cut {cut:?}");
        events.push(got.pop().unwrap());
    }
    events.dedup();
    assert_eq!(events.len(), 1);
    events
}

#[test]
fn tcp_response_split_at_every_byte() {
    let response = Response::ReadHoldingRegisters {
        registers: registers_1000(),
    };
    let frame = TcpServer::encode_response(7, 1, &response).unwrap();
    let events = tcp_split_everywhere(&FC3_40000_X10, &frame);
    assert_eq!(
        events[0],
        ClientEvent::Response {
            transaction_id: 7,
            unit: 1,
            response
        }
    );
    let exception = hex("00 07 00 00 00 03 01 83 02");
    let events = tcp_split_everywhere(&FC3_40000_X10, &exception);
    assert_eq!(
        events[0],
        ClientEvent::Response {
            transaction_id: 7,
            unit: 1,
            response: Response::Exception {
                function: 3,
                code: 2
            }
        }
    );
}

#[test]
fn rtu_response_split_at_every_byte() {
    let frame = rtu_response_1000();
    for cut in 0..=frame.len() {
        let mut client = RtuClient::new();
        client.encode_request(1, FC3_40000_X10).unwrap();
        client.receive_data(&frame[..cut]);
        let first = client.next_event();
        client.receive_data(&frame[cut..]);
        let event = first.or_else(|| client.next_event());
        assert_eq!(
            event,
            Some(ClientEvent::Response {
                transaction_id: 1,
                unit: 1,
                response: Response::ReadHoldingRegisters {
                    registers: registers_1000()
                }
            }),
            "cut at {cut}"
        );
        assert!(!client.is_pending());
    }
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::ReadCoils {
            address: 1,
            count: 2000,
        },
        Request::ReadDiscreteInputs {
            address: 0,
            count: 9,
        },
        FC3_40000_X10,
        Request::ReadInputRegisters {
            address: 65410,
            count: 125,
        },
        Request::WriteSingleCoil {
            address: 7,
            value: true,
        },
        Request::WriteSingleRegister {
            address: 7,
            value: 0xBEEF,
        },
        Request::WriteMultipleCoils {
            address: 3,
            values: vec![true, false, true, true, false, false, true, false, true],
        },
        Request::WriteMultipleRegisters {
            address: 3,
            values: vec![0xAAAA; 123],
        },
        Request::ReadWriteMultipleRegisters {
            read_address: 1,
            read_count: 125,
            write_address: 2,
            values: vec![5; 121],
        },
        Request::ReadDeviceIdentification {
            read_code: 1,
            object_id: 0,
        },
    ]
}

fn answer(request: &Request) -> Response {
    match request.clone() {
        Request::ReadCoils { count, .. } => Response::ReadCoils {
            bits: (0..count).map(|i| i % 3 == 0).collect(),
        },
        Request::ReadDiscreteInputs { count, .. } => Response::ReadDiscreteInputs {
            bits: (0..count).map(|i| i % 2 == 0).collect(),
        },
        Request::ReadHoldingRegisters { count, .. } => Response::ReadHoldingRegisters {
            registers: (0..count).collect(),
        },
        Request::ReadInputRegisters { count, .. } => Response::ReadInputRegisters {
            registers: (0..count).map(|i| i * 7).collect(),
        },
        Request::WriteSingleCoil { address, value } => Response::WriteSingleCoil { address, value },
        Request::WriteSingleRegister { address, value } => {
            Response::WriteSingleRegister { address, value }
        }
        Request::WriteMultipleCoils { address, values } => Response::WriteMultipleCoils {
            address,
            count: values.len() as u16,
        },
        Request::WriteMultipleRegisters { address, values } => Response::WriteMultipleRegisters {
            address,
            count: values.len() as u16,
        },
        Request::ReadWriteMultipleRegisters { read_count, .. } => {
            Response::ReadWriteMultipleRegisters {
                registers: (0..read_count).rev().collect(),
            }
        }
        Request::ReadDeviceIdentification { read_code, .. } => Response::ReadDeviceIdentification {
            read_code,
            conformity: 0x81,
            more_follows: false,
            next_object_id: 0,
            objects: vec![
                (0, b"hubgate".to_vec()),
                (1, b"HG-1".to_vec()),
                (2, b"0.1".to_vec()),
            ],
        },
    }
}

/// Client encodes, server decodes, server answers, client decodes: over TCP
/// and RTU, every function code, every response split at every byte.
#[test]
fn every_function_round_trips_through_both_transports() {
    for request in all_requests() {
        let response = answer(&request);
        let mut tcp_client = TcpClient::new();
        let mut tcp_server = TcpServer::new();
        let (tid, frame) = tcp_client.encode_request(5, request.clone()).unwrap();
        tcp_server.receive_data(&frame);
        assert_eq!(
            tcp_server.next_event().unwrap(),
            Some(ServerEvent::Request {
                transaction_id: tid,
                unit: 5,
                request: request.clone()
            })
        );
        let reply = TcpServer::encode_response(tid, 5, &response).unwrap();
        assert!(reply.len() <= 260);
        tcp_split_everywhere(&request, &{
            let mut shifted = reply.clone();
            shifted[..2].copy_from_slice(&7u16.to_be_bytes());
            shifted
        });
        tcp_client.receive_data(&reply);
        assert_eq!(
            tcp_client.next_event().unwrap(),
            Some(ClientEvent::Response {
                transaction_id: tid,
                unit: 5,
                response: response.clone()
            })
        );

        let mut rtu_server = RtuServer::new();
        let (_, frame) = RtuClient::new().encode_request(5, request.clone()).unwrap();
        for cut in 0..=frame.len() {
            rtu_server.receive_data(&frame[..cut]);
            let early = rtu_server.next_event();
            rtu_server.receive_data(&frame[cut..]);
            let event = early.or_else(|| rtu_server.next_event());
            assert!(
                matches!(&event, Some(ServerEvent::Request { request: r, unit: 5, .. }) if *r == request),
                "{request:?} cut at {cut}: {event:?}"
            );
        }
        let reply = RtuServer::encode_response(5, &response).unwrap();
        assert!(reply.len() <= 256);
        for cut in 0..=reply.len() {
            let mut rtu_client = RtuClient::new();
            rtu_client.encode_request(5, request.clone()).unwrap();
            rtu_client.receive_data(&reply[..cut]);
            let early = rtu_client.next_event();
            rtu_client.receive_data(&reply[cut..]);
            let event = early.or_else(|| rtu_client.next_event());
            assert!(
                matches!(&event, Some(ClientEvent::Response { response: r, .. }) if *r == response),
                "{request:?} cut at {cut}: {event:?}"
            );
        }
    }
}

#[test]
fn several_tcp_frames_in_one_buffer_in_any_order() {
    let mut client = TcpClient::new();
    let (a, _) = client.encode_request(1, FC3_40000_X10).unwrap();
    let (b, _) = client
        .encode_request(
            2,
            Request::WriteSingleRegister {
                address: 1,
                value: 2,
            },
        )
        .unwrap();
    let mut data = TcpServer::encode_response(
        b,
        2,
        &Response::WriteSingleRegister {
            address: 1,
            value: 2,
        },
    )
    .unwrap();
    data.extend(
        TcpServer::encode_response(
            a,
            1,
            &Response::ReadHoldingRegisters {
                registers: registers_1000(),
            },
        )
        .unwrap(),
    );
    client.receive_data(&data);
    let first = client.next_event().unwrap().unwrap();
    let second = client.next_event().unwrap().unwrap();
    assert!(matches!(first, ClientEvent::Response { transaction_id, .. } if transaction_id == b));
    assert!(matches!(second, ClientEvent::Response { transaction_id, .. } if transaction_id == a));
    assert_eq!(client.next_event().unwrap(), None);
    assert_eq!(client.pending(), 0);
}

#[test]
fn responses_to_other_requests_are_rejected() {
    let registers = |n: u16| Response::ReadHoldingRegisters {
        registers: (0..n).collect(),
    };
    let cases: Vec<(u16, u8, Response, Rejection)> = vec![
        (99, 1, registers(10), Rejection::UnknownTransaction),
        (1, 2, registers(10), Rejection::Unit { expected: 1 }),
        (
            1,
            1,
            registers(9),
            Rejection::Mismatch(Mismatch::Quantity {
                expected: 10,
                got: 9,
            }),
        ),
        (
            1,
            1,
            Response::ReadInputRegisters {
                registers: (0..10).collect(),
            },
            Rejection::Mismatch(Mismatch::Function {
                expected: 3,
                got: 4,
            }),
        ),
    ];
    for (tid, unit, response, reason) in cases {
        let mut client = TcpClient::new();
        client.encode_request(1, FC3_40000_X10).unwrap();
        client.receive_data(&TcpServer::encode_response(tid, unit, &response).unwrap());
        let event = client.next_event().unwrap().unwrap();
        let ClientEvent::Rejected {
            reason: got,
            transaction_id,
            ..
        } = event
        else {
            panic!("{response:?} accepted");
        };
        assert_eq!(got, reason);
        assert_eq!(transaction_id, (tid == 1).then_some(1));
        assert_eq!(client.pending(), usize::from(tid != 1));
    }
}

#[test]
fn late_response_after_forget_is_rejected() {
    let mut client = TcpClient::new();
    let (tid, _) = client.encode_request(1, FC3_40000_X10).unwrap();
    assert!(client.forget(tid));
    client.receive_data(
        &TcpServer::encode_response(
            tid,
            1,
            &Response::ReadHoldingRegisters {
                registers: registers_1000(),
            },
        )
        .unwrap(),
    );
    assert!(matches!(
        client.next_event(),
        Ok(Some(ClientEvent::Rejected {
            reason: Rejection::UnknownTransaction,
            ..
        }))
    ));
}

#[test]
fn bad_mbap_header_closes_the_stream() {
    let mut server = TcpServer::new();
    server.receive_data(&hex("00 01 00 00 01 00 01 03 00 00 00 01"));
    let err = server.next_event().unwrap_err();
    assert_eq!(err, FrameError::Length { length: 256 });
    assert_eq!(server.next_event().unwrap_err(), err);
    let mut server = TcpServer::new();
    server.receive_data(&hex("00 01 00 05 00 06 01 03 00 00 00 01"));
    assert_eq!(
        server.next_event().unwrap_err(),
        FrameError::Protocol { protocol_id: 5 }
    );
    let mut server = TcpServer::new();
    server.receive_data(&hex("00 01 00 00 00 01 01"));
    assert_eq!(
        server.next_event().unwrap_err(),
        FrameError::Length { length: 1 }
    );
}

#[test]
fn server_reports_bad_requests_with_their_exception_code() {
    let cases = [
        ("00 01 00 00 00 06 01 03 00 00 00 7e", 3, 3), // 126 registers
        ("00 01 00 00 00 06 01 03 ff ff 00 02", 3, 2), // past 65535
        ("00 01 00 00 00 02 01 41", 0x41, 1),          // unknown function
        ("00 01 00 00 00 06 01 05 00 01 12 34", 5, 3), // coil value
        ("00 01 00 00 00 05 01 03 00 00 00", 3, 3),    // short
        ("00 01 00 00 00 0a 01 10 00 00 00 02 04 00 01 00", 16, 3), // byte count
    ];
    for (frame, function, exception) in cases {
        let mut server = TcpServer::new();
        server.receive_data(&hex(frame));
        match server.next_event().unwrap() {
            Some(ServerEvent::Invalid { error, .. }) => {
                assert_eq!(
                    (error.function, error.exception),
                    (function, exception),
                    "{frame}"
                );
            }
            other => panic!("{frame}: {other:?}"),
        }
    }
}

#[test]
fn encoding_enforces_spec_limits() {
    let too_many = [
        Request::ReadHoldingRegisters {
            address: 0,
            count: 126,
        },
        Request::ReadCoils {
            address: 0,
            count: 2001,
        },
        Request::ReadInputRegisters {
            address: 0,
            count: 0,
        },
        Request::WriteMultipleRegisters {
            address: 0,
            values: vec![0; 124],
        },
        Request::WriteMultipleCoils {
            address: 0,
            values: vec![true; 1969],
        },
        Request::ReadWriteMultipleRegisters {
            read_address: 0,
            read_count: 1,
            write_address: 0,
            values: vec![0; 122],
        },
    ];
    for request in too_many {
        let mut out = Vec::new();
        assert!(
            matches!(request.encode(&mut out), Err(EncodeError::Quantity { .. })),
            "{request:?}"
        );
        assert!(out.is_empty());
    }
    let overflow = Request::ReadHoldingRegisters {
        address: 65530,
        count: 7,
    };
    assert!(matches!(
        overflow.encode(&mut Vec::new()),
        Err(EncodeError::AddressOverflow { .. })
    ));
    let mut client = TcpClient::new();
    assert!(client.encode_request(1, overflow).is_err());
    assert_eq!(client.pending(), 0);
}

#[test]
fn rtu_resynchronises_after_garbage_and_bad_crc() {
    let good = rtu_response_1000();
    let mut corrupted = good.clone();
    corrupted[7] ^= 0x40;
    let mut client = RtuClient::new();
    client.encode_request(1, FC3_40000_X10).unwrap();
    let mut data = hex("ff 00 01 7f 03 01 03 01");
    data.extend(&good);
    client.receive_data(&data);
    assert!(matches!(
        client.next_event(),
        Some(ClientEvent::Response { .. })
    ));
    assert_eq!(client.discarded(), 8);

    client.encode_request(1, FC3_40000_X10).unwrap();
    client.receive_data(&corrupted);
    assert_eq!(
        client.next_event(),
        Some(ClientEvent::Rejected {
            transaction_id: Some(2),
            unit: 1,
            reason: Rejection::Crc
        })
    );
    assert!(!client.is_pending());
    assert!(matches!(
        client.next_event(),
        Some(ClientEvent::Rejected {
            reason: Rejection::Unsolicited { bytes: 24 },
            ..
        })
    ));

    let mut server = RtuServer::new();
    let (_, request) = RtuClient::new().encode_request(1, FC3_40000_X10).unwrap();
    let mut stream = corrupted.clone();
    stream.extend(&request);
    stream.extend(&request);
    server.receive_data(&stream);
    assert!(matches!(
        server.next_event(),
        Some(ServerEvent::Request { .. })
    ));
    assert!(matches!(
        server.next_event(),
        Some(ServerEvent::Request { .. })
    ));
    assert_eq!(server.next_event(), None);
}

#[test]
fn coil_responses_are_cut_to_the_requested_count() {
    let mut client = TcpClient::new();
    let (tid, _) = client
        .encode_request(
            1,
            Request::ReadCoils {
                address: 0,
                count: 3,
            },
        )
        .unwrap();
    client.receive_data(
        &TcpServer::encode_response(
            tid,
            1,
            &Response::ReadCoils {
                bits: vec![true, false, true, true],
            },
        )
        .unwrap(),
    );
    assert_eq!(
        client.next_event().unwrap(),
        Some(ClientEvent::Response {
            transaction_id: tid,
            unit: 1,
            response: Response::ReadCoils {
                bits: vec![true, false, true]
            }
        })
    );
}

fn codec(kind: ValueType, order: WordOrder) -> Codec {
    Codec {
        order,
        ..Codec::new(kind)
    }
}

#[test]
fn word_orders_of_a_32_bit_value() {
    // 0x11223344 as ABCD, CDAB, BADC, DCBA.
    let cases = [
        (WordOrder::Abcd, [0x1122, 0x3344]),
        (WordOrder::Cdab, [0x3344, 0x1122]),
        (WordOrder::Badc, [0x2211, 0x4433]),
        (WordOrder::Dcba, [0x4433, 0x2211]),
    ];
    for (order, registers) in cases {
        let c = codec(ValueType::U32, order);
        assert_eq!(c.decode(&registers), Value::UInt(0x1122_3344), "{order:?}");
        assert_eq!(c.encode(&Value::UInt(0x1122_3344)).unwrap(), registers);
    }
    let f = codec(ValueType::F32, WordOrder::Cdab);
    assert_eq!(f.decode(&[0x0000, 0x4049]), Value::Float(3.140625));
}

#[test]
fn sentinels_scale_and_strings() {
    let standard = |kind| Codec {
        sentinel: Sentinel::Standard,
        ..Codec::new(kind)
    };
    assert_eq!(standard(ValueType::U16).decode(&[0xFFFF]), Value::Missing);
    assert_eq!(standard(ValueType::I16).decode(&[0x8000]), Value::Missing);
    assert_eq!(standard(ValueType::I16).decode(&[0xFFFF]), Value::Int(-1));
    assert_eq!(
        standard(ValueType::I32).decode(&[0x8000, 0]),
        Value::Missing
    );
    assert_eq!(
        standard(ValueType::U32).decode(&[0xFFFF, 0xFFFF]),
        Value::Missing
    );
    assert_eq!(
        standard(ValueType::F32).decode(&[0x7FC0, 0]),
        Value::Missing
    );
    let scaled = Codec {
        scale: 0.1,
        offset: -40.0,
        ..Codec::new(ValueType::I16)
    };
    assert_eq!(scaled.decode(&[650]), Value::Float(650.0 * 0.1 - 40.0));
    assert_eq!(scaled.encode(&Value::Float(25.0)).unwrap(), [650]);
    let text = Codec::new(ValueType::String(3));
    assert_eq!(
        text.decode(&[0x5375, 0x6E53, 0x2000]),
        Value::Text("SunS".into())
    );
    assert_eq!(
        standard(ValueType::String(2)).decode(&[0, 0]),
        Value::Missing
    );
    let flag = Codec {
        mask: Some(1),
        shift: 15,
        ..Codec::new(ValueType::Bitfield(1))
    };
    assert_eq!(flag.decode(&[0x8000]), Value::UInt(1));
    let utf16 = Codec {
        charset: Charset::Utf16Be,
        ..Codec::new(ValueType::String(4))
    };
    assert_eq!(
        utf16.decode(&[0x0041, 0x00E9, 0, 0]),
        Value::Text("Aé".into())
    );
    assert_eq!(
        utf16.encode(&Value::Text("Aé".into())).unwrap(),
        [0x0041, 0x00E9, 0, 0]
    );
    let several = Codec {
        sentinel: Sentinel::Raw(vec![0x7FFF, 0xFFFE]),
        ..Codec::new(ValueType::U16)
    };
    assert_eq!(several.decode(&[0xFFFE]), Value::Missing);
    assert_eq!(several.decode(&[0xFFFF]), Value::UInt(0xFFFF));
}

fn field(address: u16, kind: ValueType) -> Field {
    Field::holding(address, kind)
}

#[test]
fn planner_joins_within_gap_and_block() {
    let fields = vec![
        field(100, ValueType::U16),
        field(101, ValueType::U32),
        field(110, ValueType::U16),
        field(300, ValueType::F32),
        Field {
            function: 4,
            ..field(100, ValueType::U16)
        },
    ];
    let plan = |limits: &Limits| {
        ReadPlan::new(fields.clone(), limits)
            .unwrap()
            .reads()
            .iter()
            .map(|r| (r.function, r.address, r.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        plan(&Limits::default()),
        [(3, 100, 3), (3, 110, 1), (3, 300, 2), (4, 100, 1)]
    );
    let gap = Limits {
        max_gap: 10,
        ..Limits::default()
    };
    assert_eq!(plan(&gap), [(3, 100, 11), (3, 300, 2), (4, 100, 1)]);
    let forbidden = Limits {
        forbidden: vec![(105, 105)],
        ..gap.clone()
    };
    assert_eq!(
        plan(&forbidden),
        [(3, 100, 3), (3, 110, 1), (3, 300, 2), (4, 100, 1)]
    );
    let small = Limits {
        max_block: 5,
        ..gap
    };
    assert_eq!(
        plan(&small),
        [(3, 100, 3), (3, 110, 1), (3, 300, 2), (4, 100, 1)]
    );
    let single = Limits {
        single_register: true,
        ..Limits::default()
    };
    assert_eq!(plan(&single).len(), 7);
    let big_gap = Limits {
        max_gap: 1000,
        ..Limits::default()
    };
    assert_eq!(plan(&big_gap), [(3, 100, 11), (3, 300, 2), (4, 100, 1)]);
}

#[test]
fn plan_decodes_every_field_across_reads() {
    let fields = vec![
        field(10, ValueType::U32),
        field(12, ValueType::I16),
        field(0, ValueType::U16),
    ];
    for single_register in [false, true] {
        let limits = Limits {
            single_register,
            max_gap: 9,
            ..Limits::default()
        };
        let plan = ReadPlan::new(fields.clone(), &limits).unwrap();
        let image: Vec<u16> = (0..20).map(|i| 0x0100 + i).collect();
        let registers: Vec<Vec<u16>> = plan
            .reads()
            .iter()
            .map(|r| image[usize::from(r.address)..][..usize::from(r.count)].to_vec())
            .collect();
        let responses: Vec<Option<Block<'_>>> = registers
            .iter()
            .map(|r| Some(Block::Registers(r)))
            .collect();
        assert_eq!(
            plan.decode(&responses).unwrap(),
            [
                Value::UInt(0x010A_010B),
                Value::Int(0x010C),
                Value::UInt(0x0100)
            ]
        );
        let failed: Vec<Option<Block<'_>>> = vec![None; responses.len()];
        assert_eq!(
            plan.decode(&failed).unwrap(),
            [Value::Missing, Value::Missing, Value::Missing]
        );
    }
}

#[test]
fn planner_rejects_impossible_fields() {
    let limits = Limits {
        forbidden: vec![(5, 6)],
        max_block: 2,
        ..Limits::default()
    };
    for bad in [
        field(6, ValueType::U16),
        field(65535, ValueType::U32),
        field(0, ValueType::U64),
        Field {
            function: 5,
            ..field(0, ValueType::U16)
        },
    ] {
        assert!(
            ReadPlan::new(vec![bad.clone()], &limits).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn sunspec_scale_factors_and_bits() {
    // W at 40084 (i16) with its scale factor at 40085; the same factor for
    // two fields is read once; 0x8000 makes the value missing.
    let with_sf = |address| Field {
        scale_factor: Some(40085),
        codec: Codec {
            offset: 1.0,
            ..Codec::new(ValueType::I16)
        },
        ..field(address, ValueType::I16)
    };
    let coil = Field {
        function: 1,
        invert: true,
        ..field(7, ValueType::U16)
    };
    let plan = ReadPlan::new(
        vec![with_sf(40084), with_sf(40083), coil],
        &Limits::default(),
    )
    .unwrap();
    let reads: Vec<_> = plan
        .reads()
        .iter()
        .map(|r| (r.function, r.address, r.count))
        .collect();
    assert_eq!(reads, [(1, 7, 1), (3, 40083, 3)]);
    assert_eq!(plan.fields().len(), 3);
    let bits = [false];
    let regs = [150, 1234, (-2i16) as u16];
    let values = plan
        .decode(&[Some(Block::Bits(&bits)), Some(Block::Registers(&regs))])
        .unwrap();
    assert_eq!(
        values,
        [
            Value::Float(1234.0 * 0.01 + 1.0),
            Value::Float(150.0 * 0.01 + 1.0),
            Value::Bool(true)
        ]
    );
    let regs = [150, 1234, 0x8000];
    let values = plan
        .decode(&[Some(Block::Bits(&bits)), Some(Block::Registers(&regs))])
        .unwrap();
    assert_eq!(values[..2], [Value::Missing, Value::Missing]);
    assert!(plan
        .decode(&[Some(Block::Registers(&regs)), Some(Block::Registers(&regs))])
        .is_err());
}

fn request_strategy() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), 1..=125u16).prop_map(|(address, count)| Request::ReadHoldingRegisters {
            address: address.min(65535 - count + 1),
            count
        }),
        (any::<u16>(), 1..=2000u16).prop_map(|(address, count)| Request::ReadCoils {
            address: address.min(65535 - count + 1),
            count
        }),
        (
            any::<u16>(),
            proptest::collection::vec(any::<u16>(), 1..=123)
        )
            .prop_map(|(address, values)| Request::WriteMultipleRegisters {
                address: address.min(65535 - values.len() as u16 + 1),
                values
            }),
        (any::<u16>(), any::<bool>())
            .prop_map(|(address, value)| Request::WriteSingleCoil { address, value }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes into every decoder: no panic, and every decoder
    /// consumes or reports all of it.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
        let split = split.min(data.len());
        let mut tcp_client = TcpClient::new();
        tcp_client.encode_request(1, FC3_40000_X10).unwrap();
        let mut tcp_server = TcpServer::new();
        let mut rtu_client = RtuClient::new();
        rtu_client.encode_request(data.first().copied().unwrap_or(1).max(1), FC3_40000_X10).unwrap();
        let mut rtu_server = RtuServer::new();
        for part in [&data[..split], &data[split..]] {
            tcp_client.receive_data(part);
            tcp_server.receive_data(part);
            rtu_client.receive_data(part);
            rtu_server.receive_data(part);
            while let Ok(Some(_)) = tcp_client.next_event() {}
            while let Ok(Some(_)) = tcp_server.next_event() {}
            while rtu_client.next_event().is_some() {}
            while rtu_server.next_event().is_some() {}
        }
        let _ = Request::decode(&data);
        let _ = Response::decode(&data);
    }

    /// Any valid request survives encode then decode on both transports.
    #[test]
    fn requests_round_trip(request in request_strategy(), unit in 1u8..=247) {
        let (_, frame) = TcpClient::new().encode_request(unit, request.clone()).unwrap();
        let mut server = TcpServer::new();
        server.receive_data(&frame);
        let decoded = server.next_event().unwrap();
        prop_assert_eq!(decoded, Some(ServerEvent::Request { transaction_id: 1, unit, request: request.clone() }));
        let (_, frame) = RtuClient::new().encode_request(unit, request.clone()).unwrap();
        let mut server = RtuServer::new();
        server.receive_data(&frame);
        prop_assert_eq!(server.next_event(), Some(ServerEvent::Request { transaction_id: 0, unit, request }));
    }

    /// Any registers through any codec and any plan: no panic.
    #[test]
    fn arbitrary_registers_never_panic(
        registers in proptest::collection::vec(any::<u16>(), 125),
        kind in 0..10usize,
        count in 1..=4u16,
        order in 0..4usize,
        mask in proptest::option::of(any::<u64>()),
        shift in 0..64u8,
        exponent in proptest::option::of(any::<i64>()),
        addresses in proptest::collection::vec(0..120u16, 1..20),
        max_gap in 0..10u16,
        single_register in any::<bool>(),
    ) {
        let kind = [
            ValueType::U16, ValueType::I16, ValueType::U32, ValueType::I32, ValueType::U64,
            ValueType::I64, ValueType::F32, ValueType::F64, ValueType::Bitfield(count),
            ValueType::String(count),
        ][kind];
        let order = [WordOrder::Abcd, WordOrder::Cdab, WordOrder::Badc, WordOrder::Dcba][order];
        let codec = Codec { order, mask, shift, sentinel: Sentinel::Standard, ..Codec::new(kind) };
        let value = codec.decode_with(&registers, exponent);
        if !matches!(value, Value::Missing) && mask.is_none() && shift == 0 {
            let _ = codec.encode_with(&value, exponent);
        }
        let fields: Vec<Field> = addresses
            .iter()
            .map(|&a| Field { codec: codec.clone(), scale_factor: (a % 3 == 0).then_some(a / 2), ..field(a, kind) })
            .collect();
        let limits = Limits { max_gap, single_register, ..Limits::default() };
        if let Ok(plan) = ReadPlan::new(fields, &limits) {
            let blocks: Vec<Vec<u16>> = plan
                .reads()
                .iter()
                .map(|r| registers[usize::from(r.address)..][..usize::from(r.count)].to_vec())
                .collect();
            let responses: Vec<Option<Block<'_>>> =
                blocks.iter().map(|b| Some(Block::Registers(b))).collect();
            prop_assert!(plan.decode(&responses).is_ok());
        }
    }

    /// Every word order round-trips every 32- and 64-bit value.
    #[test]
    fn word_orders_round_trip(raw in any::<u64>(), order in 0..4usize) {
        let order = [WordOrder::Abcd, WordOrder::Cdab, WordOrder::Badc, WordOrder::Dcba][order];
        let wide = codec(ValueType::U64, order);
        prop_assert_eq!(wide.decode(&wide.encode(&Value::UInt(raw)).unwrap()), Value::UInt(raw));
        let narrow = codec(ValueType::I32, order);
        let v = i64::from(raw as u32 as i32);
        prop_assert_eq!(narrow.decode(&narrow.encode(&Value::Int(v)).unwrap()), Value::Int(v));
    }
}
