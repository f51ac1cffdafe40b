//! The parse hot path allocates nothing: a counting global allocator around parsing typical
//! REGISTER, INVITE-with-SDP and 200 OK messages, with and without the typed core headers.
#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition; it only forwards to System.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use latchkey_protocol::sip::Message;
use latchkey_protocol::sip::validate::Options;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell`, so other test threads do not disturb the count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

/// A REGISTER with digest credentials, as latchkey sends it.
const REGISTER: &[u8] = b"REGISTER sip:gw.example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.4:49152;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:owner_client@gw.example.com>;tag=a73kszlfl\r\n\
To: <sip:owner_client@gw.example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.4\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:owner_client@192.0.2.4:49152;transport=tls>;expires=600\r\n\
Authorization: Digest username=\"owner_client\", realm=\"gw.example.com\", nonce=\"5f1c3a\", uri=\"sip:gw.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n\
Expires: 600\r\n\
User-Agent: latchkey/0.1\r\n\
Content-Length: 0\r\n\r\n";

/// A doorbell INVITE with an SDP body.
const INVITE: &[u8] = b"INVITE sip:owner_client@192.0.2.4:49152;transport=tls SIP/2.0\r\n\
Via: SIP/2.0/TLS 203.0.113.10:5228;branch=z9hG4bK-524287-1---8b1e0f3a;rport\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:203.0.113.10:5228;transport=tls;lr>\r\n\
From: \"Door Entry\" <sip:c100x@gw.example.com>;tag=b2a3c4d5\r\n\
To: <sip:owner_client@gw.example.com>\r\n\
Call-ID: 5e8a7f3c2b1d@203.0.113.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:c100x@203.0.113.10:5228;transport=tls>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO\r\n\
Supported: replaces, timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 228\r\n\r\n\
v=0\r\n\
o=- 3868000000 3868000000 IN IP4 203.0.113.10\r\n\
s=door\r\n\
c=IN IP4 203.0.113.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
m=video 40002 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n";

/// The 200 OK to the REGISTER.
const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TLS 192.0.2.4:49152;branch=z9hG4bK776asdhds;rport=49152;received=198.51.100.7\r\n\
From: <sip:owner_client@gw.example.com>;tag=a73kszlfl\r\n\
To: <sip:owner_client@gw.example.com>;tag=37GkEhwl6\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.4\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:owner_client@192.0.2.4:49152;transport=tls>;expires=600\r\n\
Date: Mon, 23 Nov 2026 15:48:35 GMT\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn typical_messages_parse_without_allocating() {
    for raw in [REGISTER, INVITE, OK] {
        // Warm up thread-locals and lazy statics outside the measured region.
        Message::parse(raw)
            .unwrap()
            .validate(Options::stream())
            .unwrap();
        let n = allocations_during(|| {
            let m = Message::parse(raw).unwrap();
            std::hint::black_box(&m);
        });
        assert_eq!(n, 0, "parse allocated {n} times");
    }
}

#[test]
fn typed_core_headers_are_read_without_allocating() {
    for raw in [REGISTER, INVITE, OK] {
        let n = allocations_during(|| {
            let m = Message::parse(raw).unwrap();
            let via = m.top_via().unwrap();
            let from = m.from().unwrap();
            let to = m.to().unwrap();
            let cseq = m.cseq().unwrap();
            let call_id = m.call_id().unwrap();
            let cl = m.content_length().unwrap();
            let contacts = m.contacts().filter(Result::is_ok).count();
            std::hint::black_box((
                via.branch(),
                from.tag(),
                to.uri,
                cseq,
                call_id,
                cl,
                contacts,
            ));
        });
        assert_eq!(n, 0, "typed views allocated {n} times");
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards against a counter that can never fail.
    let n = allocations_during(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert!(n >= 1);
}
