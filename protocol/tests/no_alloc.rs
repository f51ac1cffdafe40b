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
const REGISTER: &[u8] = include_bytes!("messages/register.sip");

/// A doorbell INVITE with an SDP body.
const INVITE: &[u8] = include_bytes!("messages/invite-sdp.sip");

/// The 200 OK to the REGISTER.
const OK: &[u8] = include_bytes!("messages/ok-register.sip");

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
