//! A panel's WebSocket connection after the 101: frames by tungstenite's codec (run over
//! in-memory buffers, so this driver owns every socket read and write and its timeouts),
//! messages and liveness by the gateway's [`WsSession`], messages from elsewhere in the
//! application through the connection's [`Outbox`].

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use event_listener::Event as Signal;
use latchkey_gateway::{WsFrame, WsSession};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};

use super::http1::write_with_timeout;
use super::{Server, race};
use crate::rt::Rt;
use crate::runtime::Runtime;

/// Messages waiting for one connection at most; a panel that reads slower than the
/// application writes is closed (1008) rather than buffered without bound. A message that
/// supersedes a queued one (the newest state of an IO) replaces it, so bursts of changes to
/// a few IOs never reach the cap.
pub const MAX_QUEUED: usize = 256;

/// Bytes read from the socket at a time, and tungstenite's read chunk.
const READ_CHUNK: usize = 4096;

/// What another part of the application asked a connection to send.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A text message, with the key of the state it carries when a newer one makes it
    /// obsolete.
    Text {
        text: String,
        supersedes: Option<String>,
    },
    Close(u16, String),
}

/// One connection's queue of outgoing messages.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: Mutex<(VecDeque<Outgoing>, bool)>,
    ready: Signal,
}

impl Outbox {
    /// Queues `message` at the end, dropping a queued message it supersedes; when the queue
    /// is full the connection is closed instead.
    pub(crate) fn push(&self, message: Outgoing) {
        {
            let mut q = self.lock();
            if let Outgoing::Text {
                supersedes: Some(key),
                ..
            } = &message
            {
                q.0.retain(|queued| {
                    !matches!(queued, Outgoing::Text { supersedes: Some(k), .. } if k == key)
                });
            }
            if q.0.len() >= MAX_QUEUED {
                q.1 = true;
            } else {
                q.0.push_back(message);
            }
        }
        self.ready.notify(usize::MAX);
    }

    fn take(&self) -> (Vec<Outgoing>, bool) {
        let mut q = self.lock();
        (q.0.drain(..).collect(), q.1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Outgoing>, bool)> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The codec's view of the socket: bytes received but not yet decoded, bytes encoded but
/// not yet written. Reading an empty pipe is `WouldBlock`, which tungstenite takes as "no
/// complete frame yet" and keeps its partial state.
#[derive(Default)]
struct Pipe {
    input: Vec<u8>,
    at: usize,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = &self.input[self.at..];
        if left.is_empty() {
            self.input.clear();
            self.at = 0;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What woke the connection.
enum Wake {
    Read(io::Result<usize>),
    Outbox,
    Timer,
    Stop,
}

/// Drives one upgraded connection until either side closes it. `early` holds bytes the
/// client sent right after its upgrade request.
pub(crate) async fn run(
    server: &Server,
    stream: &mut <Rt as Runtime>::Stream,
    mut session: WsSession,
    outbox: Arc<Outbox>,
    early: Vec<u8>,
) {
    let conn = session.conn();
    let limits = &server.config.limits;
    // Small buffers: a panel sends a few hundred bytes at a time, and a gateway holds
    // thousands of panels (tungstenite's 128 KiB default read chunk would be most of the
    // memory per connection).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(0)
        .max_message_size(Some(latchkey_gateway::http::MAX_BODY_BYTES))
        .max_frame_size(Some(latchkey_gateway::http::MAX_BODY_BYTES));
    let mut ctx = WebSocketContext::new(Role::Server, Some(config));
    let mut pipe = Pipe {
        input: early,
        ..Pipe::default()
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut open = true;
    while open {
        // Listen before looking, so nothing queued after the look is missed.
        let queued = outbox.ready.listen();
        let stopping = server.stop.listen();
        let (messages, overflow) = outbox.take();
        for message in messages {
            let frame = match message {
                Outgoing::Text { text, .. } => WsFrame::Text(text),
                Outgoing::Close(code, reason) => WsFrame::Close { code, reason },
            };
            open &= send(&mut ctx, &mut pipe, frame);
        }
        if overflow && open {
            open = send(
                &mut ctx,
                &mut pipe,
                WsFrame::Close {
                    code: 1008,
                    reason: "reading too slowly".to_owned(),
                },
            );
        }
        if server.stopping() && open {
            open = send(
                &mut ctx,
                &mut pipe,
                WsFrame::Close {
                    code: 1001,
                    reason: "server shutting down".to_owned(),
                },
            );
        }
        open &= decode(server, &mut ctx, &mut pipe, &mut session);
        if !pipe.output.is_empty() {
            let out = std::mem::take(&mut pipe.output);
            if write_with_timeout(stream, &out, limits).await.is_err() {
                break;
            }
        }
        if !open || session.is_closed() && !ctx.can_write() {
            break;
        }
        let wait = session.poll_timeout().map_or(limits.idle_timeout, |at| {
            at.saturating_duration_since(server.now().instant)
        });
        let woke = Rt::timeout(
            wait,
            race(
                async { Wake::Read(Rt::read(stream, &mut buf).await) },
                race(
                    async {
                        queued.await;
                        Wake::Outbox
                    },
                    async {
                        stopping.await;
                        Wake::Stop
                    },
                ),
            ),
        )
        .await
        .unwrap_or(Wake::Timer);
        match woke {
            Wake::Read(Ok(n)) if n > 0 => pipe.input.extend_from_slice(&buf[..n]),
            Wake::Read(_) => break,
            Wake::Timer => {
                let now = server.now();
                let (frames, effects) = {
                    let mut core = server.lock();
                    let out = session.handle_timeout(now.instant, &mut core.app);
                    (out.frames, server.post_locked(&core, out.effects))
                };
                server.queue_effects(effects);
                for frame in frames {
                    open &= send(&mut ctx, &mut pipe, frame);
                }
                if !pipe.output.is_empty() {
                    let out = std::mem::take(&mut pipe.output);
                    let _ = write_with_timeout(stream, &out, limits).await;
                }
            }
            Wake::Outbox | Wake::Stop => {}
        }
    }
    {
        let mut core = server.lock();
        session.closed(&mut core.app);
    }
    server.hub_remove(conn);
}

/// Encodes one frame; `false` once the connection should end.
fn send(ctx: &mut WebSocketContext, pipe: &mut Pipe, frame: WsFrame) -> bool {
    let result = match frame {
        WsFrame::Text(text) => ctx.write(pipe, Message::text(text)),
        WsFrame::Ping(payload) => ctx.write(pipe, Message::Ping(payload.into())),
        WsFrame::Close { code, reason } => {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            let _ = ctx.close(pipe, Some(frame));
            return false;
        }
        _ => Ok(()),
    };
    result.and_then(|()| ctx.flush(pipe)).is_ok()
}

/// Decodes every complete message in the pipe and hands it to the session; `false` once
/// the connection should end.
fn decode(
    server: &Server,
    ctx: &mut WebSocketContext,
    pipe: &mut Pipe,
    session: &mut WsSession,
) -> bool {
    loop {
        match ctx.read(pipe) {
            Ok(Message::Text(text)) => {
                let now = server.now();
                let (frames, effects) = {
                    let mut core = server.lock();
                    let out = session.handle_message(now, &mut core.app, text.as_str());
                    (out.frames, server.post_locked(&core, out.effects))
                };
                server.queue_effects(effects);
                for frame in frames {
                    if !send(ctx, pipe, frame) {
                        return false;
                    }
                }
            }
            Ok(Message::Pong(_)) => session.handle_pong(server.now().instant),
            // Pings are answered by the codec at the next flush.
            Ok(Message::Ping(_) | Message::Frame(_)) => {
                let _ = ctx.flush(pipe);
            }
            Ok(Message::Binary(_)) => {
                let out = session.handle_binary(server.now().instant);
                server.queue_effects(out.effects);
                for frame in out.frames {
                    if !send(ctx, pipe, frame) {
                        return false;
                    }
                }
            }
            Ok(Message::Close(_)) => {
                // The codec queued the reply; write it out and end.
                let _ = ctx.flush(pipe);
                return false;
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return true;
            }
            Err(tungstenite::Error::Capacity(_)) => {
                let _ = send(
                    ctx,
                    pipe,
                    WsFrame::Close {
                        code: 1009,
                        reason: "message too big".to_owned(),
                    },
                );
                return false;
            }
            Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => {
                let _ = send(
                    ctx,
                    pipe,
                    WsFrame::Close {
                        code: 1002,
                        reason: "protocol error".to_owned(),
                    },
                );
                return false;
            }
            Err(_) => return false,
        }
    }
}
