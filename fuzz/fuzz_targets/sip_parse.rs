//! Arbitrary bytes into the zero-copy parser, every typed view, and a serialize round trip.
#![no_main]

use latchkey_protocol::sip::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    let _ = m.top_via();
    let _ = m.via().count();
    let _ = m.from().map(|a| (a.tag(), a.uri.as_str()));
    let _ = m.to();
    let _ = m.contacts().count();
    let _ = m.routes().count();
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.max_forwards();
    let _ = m.expires();
    let _ = m.content_length();
    let _ = m.content_type();
    let _ = m.allow().count();
    let _ = m.supported().count();
    let _ = m.require().count();
    let _ = m.date().map(|d| d.unix_seconds());
    let _ = m.www_authenticate().count();
    let _ = m.authorization().count();
    for h in m.headers() {
        let _ = h.elements().count();
        assert!(m.offset_of(h.value) <= data.len());
    }
    // Serializing and re-parsing must give the same headers and body.
    let mut out = Vec::new();
    m.write_to(&mut out).expect("writing to a Vec cannot fail");
    let again = Message::parse(&out).expect("a serialized message parses");
    assert_eq!(m.headers().len(), again.headers().len());
    for (a, b) in m.headers().iter().zip(again.headers()) {
        assert_eq!((a.name, a.value), (b.name, b.value));
    }
    assert_eq!(m.body(), again.body());
});
