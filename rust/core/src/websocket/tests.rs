use super::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A client frame as RFC 6455 5.2 lays it out (length in its minimal form unless `long`).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn events(decoder: &mut ServerDecoder) -> Result<Vec<Event>, ProtocolError> {
    let mut out = Vec::new();
    while let Some(event) = decoder.next_event()? {
        out.push(event);
    }
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
    let mut decoder = ServerDecoder::new(1 << 20, true);
    decoder.feed(bytes);
    events(&mut decoder)
}

fn text(s: &str) -> Event {
    Event::Message {
        text: true,
        compressed: false,
        data: s.as_bytes().to_vec(),
    }
}

/// A text message in three fragments with a ping between them, then a close.
fn conversation() -> Vec<u8> {
    let mut bytes = client_frame(0x01, b"[2,\"1\",");
    bytes.extend(client_frame(0x89, b"are you there"));
    bytes.extend(client_frame(0x00, "\"Heartbeat\",{}]\u{e9}".as_bytes()));
    bytes.extend(client_frame(0x80, b""));
    bytes.extend(client_frame(0x82, &[0, 1, 2, 3, 4, 5, 6, 7, 8]));
    bytes.extend(client_frame(0x8A, b""));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    bytes.extend(client_frame(0x88, &close));
    bytes
}

fn expected() -> Vec<Event> {
    vec![
        Event::Ping(b"are you there".to_vec()),
        text("[2,\"1\",\"Heartbeat\",{}]\u{e9}"),
        Event::Message {
            text: false,
            compressed: false,
            data: vec![0, 1, 2, 3, 4, 5, 6, 7, 8],
        },
        Event::Pong(Vec::new()),
        Event::Close {
            code: 1000,
            reason: "bye".into(),
        },
    ]
}

#[test]
fn a_conversation_decodes_whole_and_split_at_every_byte() {
    let bytes = conversation();
    assert_eq!(decode(&bytes), Ok(expected()));
    for split in 0..=bytes.len() {
        let mut decoder = ServerDecoder::new(1 << 20, false);
        decoder.feed(&bytes[..split]);
        let mut got = events(&mut decoder).unwrap();
        decoder.feed(&bytes[split..]);
        got.extend(events(&mut decoder).unwrap());
        assert_eq!(got, expected(), "split at {split}");
    }
    let mut decoder = ServerDecoder::new(1 << 20, false);
    let mut got = Vec::new();
    for byte in &bytes {
        decoder.feed(std::slice::from_ref(byte));
        got.extend(events(&mut decoder).unwrap());
    }
    assert_eq!(got, expected());
}

#[test]
fn every_payload_length_form_unmasks() {
    for len in [0, 1, 3, 4, 5, 125, 126, 127, 0xFFFF, 0x10000, 70_001] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let got = decode(&client_frame(0x82, &payload)).unwrap();
        let want = Event::Message {
            text: false,
            compressed: false,
            data: payload,
        };
        assert_eq!(got, vec![want], "length {len}");
    }
}

#[test]
fn a_compressed_message_comes_out_whole_and_flagged() {
    let mut bytes = client_frame(0x41, &[0xF2, 0x48]);
    bytes.extend(client_frame(0x80, &[0xCD, 0xC9, 0x01, 0x00]));
    let got = decode(&bytes).unwrap();
    let want = Event::Message {
        text: true,
        compressed: true,
        data: vec![0xF2, 0x48, 0xCD, 0xC9, 0x01, 0x00],
    };
    assert_eq!(got, vec![want]);
}

fn failure(bytes: &[u8]) -> u16 {
    let mut decoder = ServerDecoder::new(1000, false);
    decoder.feed(bytes);
    let error = events(&mut decoder).unwrap_err();
    assert_eq!(
        decoder.next_event(),
        Err(error.clone()),
        "errors are sticky"
    );
    error.code
}

#[test]
fn malformed_frames_give_their_close_codes() {
    let unmasked = [0x81, 0x02, b'h', b'i'];
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", unmasked.to_vec(), 1002),
        ("rsv2", client_frame(0xA1, b"x"), 1002),
        ("rsv3", client_frame(0x91, b"x"), 1002),
        ("rsv1 without deflate", client_frame(0xC1, b"x"), 1002),
        ("opcode 3", client_frame(0x83, b""), 1002),
        ("opcode 0xB", client_frame(0x8B, b""), 1002),
        ("lone continuation", client_frame(0x80, b"x"), 1002),
        ("fragmented ping", client_frame(0x09, b""), 1002),
        ("rsv1 ping", client_frame(0xC9, b""), 1002),
        ("long ping", client_frame(0x89, &[0; 126]), 1002),
        ("one-byte close", client_frame(0x88, &[3]), 1002),
        (
            "close 1005",
            client_frame(0x88, &1005u16.to_be_bytes()),
            1002,
        ),
        ("close 999", client_frame(0x88, &999u16.to_be_bytes()), 1002),
        (
            "close 5000",
            client_frame(0x88, &5000u16.to_be_bytes()),
            1002,
        ),
        ("close reason", client_frame(0x88, &[3, 232, 0xFF]), 1007),
        ("text not utf-8", client_frame(0x81, &[b'a', 0xC3]), 1007),
        ("too big", client_frame(0x82, &[0; 1001]), 1009),
        ("16-bit for 5", vec![0x81, 0xFE, 0, 5], 1002),
        (
            "64-bit for 300",
            [[0x81, 0xFF].as_slice(), &300u64.to_be_bytes()].concat(),
            1002,
        ),
        (
            "64-bit top bit",
            [[0x81, 0xFF].as_slice(), &[0x80; 8]].concat(),
            1002,
        ),
    ];
    let mut nested = client_frame(0x01, b"a");
    nested.extend(client_frame(0x81, b"b"));
    cases.push(("message in a message", nested, 1002));
    let mut growing = client_frame(0x02, &[0; 600]);
    growing.extend(client_frame(0x80, &[0; 401]));
    cases.push(("fragments over the limit", growing, 1009));
    for (name, bytes, code) in cases {
        assert_eq!(failure(&bytes), code, "{name}");
    }
}

#[test]
fn a_too_big_frame_fails_on_its_header_alone() {
    let mut decoder = ServerDecoder::new(1000, false);
    decoder.feed(&[0x82, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]);
    assert_eq!(decoder.next_event().unwrap_err().code, TOO_BIG);
}

#[test]
fn close_codes_the_peer_may_send() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        assert!(sendable_close_code(code), "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        assert!(!sendable_close_code(code), "{code}");
    }
}

#[test]
fn server_frames_use_the_shortest_length_form_and_no_mask() {
    for (len, header) in [
        (0, vec![0x81, 0]),
        (125, vec![0x81, 125]),
        (126, vec![0x81, 126, 0, 126]),
        (0xFFFF, vec![0x81, 126, 0xFF, 0xFF]),
        (0x10000, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut out = Vec::new();
        encode_frame(TEXT, &vec![b'x'; len], false, &mut out);
        assert_eq!(out[..header.len()], header[..], "length {len}");
        assert_eq!(out.len(), header.len() + len);
    }
    let mut out = Vec::new();
    encode_frame(TEXT, b"z", true, &mut out);
    assert_eq!(out, vec![0xC1, 1, b'z']);
}

#[test]
fn a_close_reason_is_cut_on_a_character_boundary() {
    let mut out = Vec::new();
    encode_close(1000, &"\u{e9}".repeat(100), &mut out);
    assert_eq!(out[..2], [0x88, 124]);
    assert_eq!(out[2..4], 1000u16.to_be_bytes());
    assert!(std::str::from_utf8(&out[4..]).is_ok());
    let mut short = Vec::new();
    encode_close(4000, "ok", &mut short);
    assert_eq!(short, vec![0x88, 4, 0x0F, 0xA0, b'o', b'k']);
}
