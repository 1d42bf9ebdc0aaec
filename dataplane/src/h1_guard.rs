//! An I/O wrapper in front of the HTTP/1 connection that (a) refuses request-smuggling shapes hyper would accept
//! and (b) enforces the keep-alive idle timeout and the header-read timeout.
//!
//! (a) It follows the request framing on the byte stream (heads, Content-Length bodies, chunked bodies, as hyper
//! decodes them). A head with both `Transfer-Encoding` and `Content-Length`, more than one `Content-Length` value
//! (even equal ones), or a `Transfer-Encoding` whose final coding is not `chunked` (or that repeats `chunked`) is
//! replaced, from its first byte on this read, by a NUL byte followed by end of stream: hyper fails to parse it,
//! answers **400** and closes, after answering the earlier requests of the connection normally.
//! (b) hyper 1 has no keep-alive idle timeout, and its header-read timeout also counts idle time between
//! requests. Here: a fresh connection must start its first request within the header timeout; between requests a
//! kept-alive connection may idle for the keep-alive timeout (then it is closed quietly); once a request head has
//! begun it must complete within the header timeout (else the connection is closed). Nothing times out while a
//! request is being served.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardSettings {
    /// Idle time allowed between requests of a kept-alive connection (zero: no limit).
    pub idle_timeout: Duration,
    /// Time allowed to receive a whole request head (and the first request of a fresh connection).
    pub header_timeout: Duration,
    /// Largest head followed; beyond it hyper answers 431 itself.
    pub max_head: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Start,
    Size,
    SizeLws,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    Chunked(Chunk),
    /// Framing no longer followed (CONNECT, or something hyper itself will reject).
    Passthrough,
}

/// How a head frames its body, or that it must be refused.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Passthrough,
    Refuse,
}

/// What the lines of a head seen so far say about its framing.
#[derive(Debug, Default)]
struct HeadInfo {
    /// The request line has been seen.
    started: bool,
    connect: bool,
    http10: bool,
    /// A malformed Content-Length value.
    bad_length: bool,
    lengths: usize,
    length: Option<u64>,
    te: bool,
    chunked: usize,
    last_chunked: bool,
}

impl HeadInfo {
    /// One line of the head, without its line ending.
    fn line(&mut self, line: &[u8]) {
        if !self.started {
            self.started = true;
            self.connect = line.split(|b| *b == b' ').next() == Some(b"CONNECT");
            self.http10 = line.ends_with(b"HTTP/1.0");
            return;
        }
        const CL: &[u8] = b"content-length";
        const TE: &[u8] = b"transfer-encoding";
        // The name is everything before the first colon; only these two names matter.
        if line.len() > CL.len()
            && line[CL.len()] == b':'
            && line[..CL.len()].eq_ignore_ascii_case(CL)
        {
            for part in trim(&line[CL.len() + 1..]).split(|b| *b == b',') {
                let part = trim(part);
                self.lengths += 1;
                if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                    self.bad_length = true;
                    return;
                }
                self.length = std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
            }
        } else if line.len() > TE.len()
            && line[TE.len()] == b':'
            && line[..TE.len()].eq_ignore_ascii_case(TE)
        {
            self.te = true;
            for coding in trim(&line[TE.len() + 1..])
                .split(|b| *b == b',')
                .map(trim)
                .filter(|c| !c.is_empty())
            {
                self.last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.chunked += usize::from(self.last_chunked);
            }
        }
    }

    /// How the complete head frames its body.
    fn framing(&self) -> Framing {
        if self.bad_length {
            return Framing::Refuse;
        }
        if self.te {
            if self.lengths > 0 || self.http10 || !self.last_chunked || self.chunked != 1 {
                return Framing::Refuse;
            }
            return Framing::Chunked;
        }
        if self.lengths > 1 {
            return Framing::Refuse;
        }
        if self.connect {
            return Framing::Passthrough;
        }
        match (self.lengths, self.length) {
            (0, _) => Framing::None,
            (_, Some(n)) => Framing::Length(n),
            (_, None) => Framing::Refuse,
        }
    }
}

/// Follows request framing on the inbound byte stream. Heads are scanned line by line where they lie in the read
/// buffer; only a line split across reads is copied (to join it).
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    /// Bytes of the current head so far (0 = none yet; stray CR/LF before a head do not count).
    head_len: usize,
    /// The start of a line that continues in the next read.
    partial: Vec<u8>,
    info: HeadInfo,
    max_head: usize,
    size: u64,
    heads: u64,
}

impl Scanner {
    pub(crate) fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            head_len: 0,
            partial: Vec::new(),
            info: HeadInfo::default(),
            max_head,
            size: 0,
            heads: 0,
        }
    }

    /// Whether the stream sits between requests with nothing of the next head received.
    fn between_requests(&self) -> bool {
        self.state == State::Head && self.head_len == 0
    }

    fn head_in_progress(&self) -> bool {
        self.state == State::Head && self.head_len > 0
    }

    fn give_up_head(&mut self) {
        self.partial = Vec::new();
        self.info = HeadInfo::default();
        self.head_len = 0;
        self.state = State::Passthrough;
    }

    /// Feeds bytes just read; returns the offset in `data` from which the stream must be refused.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Passthrough => return None,
                State::Head => {
                    let start = if self.head_len == 0 {
                        while i < data.len() && (data[i] == b'\r' || data[i] == b'\n') {
                            i += 1;
                        }
                        if i == data.len() {
                            return None;
                        }
                        i
                    } else {
                        0
                    };
                    // Complete lines, until the empty line that ends the head.
                    loop {
                        let Some(nl) = memchr::memchr(b'\n', &data[i..]) else {
                            let rest = &data[i..];
                            self.head_len += rest.len();
                            if self.head_len > self.max_head {
                                self.give_up_head();
                                return None;
                            }
                            self.partial.extend_from_slice(rest);
                            return None;
                        };
                        self.head_len += nl + 1;
                        let piece = &data[i..i + nl];
                        i += nl + 1;
                        let empty = if self.partial.is_empty() {
                            let line = piece.strip_suffix(b"\r").unwrap_or(piece);
                            let empty = line.is_empty() && self.info.started;
                            if !empty {
                                self.info.line(line);
                            }
                            empty
                        } else {
                            self.partial.extend_from_slice(piece);
                            let joined = std::mem::take(&mut self.partial);
                            let line = joined.strip_suffix(b"\r").unwrap_or(&joined);
                            let empty = line.is_empty() && self.info.started;
                            if !empty {
                                self.info.line(line);
                            }
                            self.partial = joined;
                            self.partial.clear();
                            empty
                        };
                        if empty {
                            // As if byte by byte: the last byte of a head may take it one past the limit.
                            if self.head_len - 1 > self.max_head {
                                self.give_up_head();
                                return None;
                            }
                            break;
                        }
                        if self.head_len > self.max_head {
                            self.give_up_head();
                            return None;
                        }
                    }
                    self.heads += 1;
                    let framing = std::mem::take(&mut self.info).framing();
                    self.head_len = 0;
                    self.state = match framing {
                        Framing::Refuse => {
                            self.state = State::Passthrough;
                            return Some(start);
                        }
                        Framing::None | Framing::Length(0) => State::Head,
                        Framing::Length(n) => State::Body(n),
                        Framing::Chunked => State::Chunked(Chunk::Start),
                        Framing::Passthrough => State::Passthrough,
                    };
                }
                State::Body(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.state = if n == take {
                        State::Head
                    } else {
                        State::Body(n - take)
                    };
                }
                State::Chunked(Chunk::Data) => {
                    let take = self.size.min((data.len() - i) as u64);
                    i += take as usize;
                    self.size -= take;
                    if self.size == 0 {
                        self.state = State::Chunked(Chunk::DataCr);
                    }
                }
                State::Chunked(c) => {
                    let b = data[i];
                    i += 1;
                    self.state = self.chunk_step(c, b);
                }
            }
        }
        None
    }

    /// One byte of chunked framing, as hyper's decoder reads it.
    fn chunk_step(&mut self, c: Chunk, b: u8) -> State {
        let hex = |b: u8| (b as char).to_digit(16).map(u64::from);
        let next = match (c, b) {
            (Chunk::Start, _) => hex(b).map(|d| {
                self.size = d;
                Chunk::Size
            }),
            (Chunk::Size, _) if hex(b).is_some() => self
                .size
                .checked_mul(16)
                .and_then(|s| s.checked_add(hex(b).unwrap_or(0)))
                .map(|s| {
                    self.size = s;
                    Chunk::Size
                }),
            (Chunk::Size | Chunk::SizeLws, b'\t' | b' ') => Some(Chunk::SizeLws),
            (Chunk::Size | Chunk::SizeLws | Chunk::Ext, b'\r') => Some(Chunk::SizeLf),
            (Chunk::Size | Chunk::SizeLws, b';') => Some(Chunk::Ext),
            (Chunk::Ext, b'\n') => None,
            (Chunk::Ext, _) => Some(Chunk::Ext),
            (Chunk::SizeLf, b'\n') => Some(if self.size == 0 {
                Chunk::EndCr
            } else {
                Chunk::Data
            }),
            (Chunk::DataCr, b'\r') => Some(Chunk::DataLf),
            (Chunk::DataLf, b'\n') => Some(Chunk::Start),
            (Chunk::EndCr, b'\r') => Some(Chunk::EndLf),
            (Chunk::Trailer, b'\r') => Some(Chunk::TrailerLf),
            (Chunk::EndCr | Chunk::Trailer, _) => Some(Chunk::Trailer),
            (Chunk::TrailerLf, b'\n') => Some(Chunk::EndCr),
            (Chunk::EndLf, b'\n') => return State::Head,
            _ => None,
        };
        next.map_or(State::Passthrough, State::Chunked)
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    /// Close quietly (end of stream) when it fires.
    Idle,
    /// Close with an error when it fires.
    Header,
    /// A request is being served: look again later.
    Busy,
}

/// The guarded connection I/O.
pub(crate) struct GuardedIo<T> {
    inner: T,
    scanner: Scanner,
    settings: GuardSettings,
    /// Requests of this connection being served (their responses not yet finished).
    inflight: Arc<AtomicUsize>,
    /// End of stream is all that is left to read (refused head or idle close).
    closed: bool,
    accepted: Instant,
    last_activity: Instant,
    head_started: Option<Instant>,
    busy_recheck: Instant,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl<T> GuardedIo<T> {
    pub(crate) fn new(inner: T, mut settings: GuardSettings, inflight: Arc<AtomicUsize>) -> Self {
        // Zero means no timeout (as in Go's http.Server); cap huge values so deadlines cannot overflow.
        const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
        let sane = |d: Duration| if d.is_zero() { FOREVER } else { d.min(FOREVER) };
        settings.idle_timeout = sane(settings.idle_timeout);
        settings.header_timeout = sane(settings.header_timeout);
        let now = Instant::now();
        Self {
            inner,
            scanner: Scanner::new(settings.max_head),
            settings,
            inflight,
            closed: false,
            accepted: now,
            last_activity: now,
            head_started: None,
            busy_recheck: now,
            sleep: Box::pin(tokio::time::sleep_until(now + settings.header_timeout)),
            armed: None,
        }
    }

    fn deadline(&mut self) -> Option<(Instant, Timer)> {
        if self.scanner.head_in_progress() {
            let started = *self.head_started.get_or_insert(self.last_activity);
            return Some((started + self.settings.header_timeout, Timer::Header));
        }
        if !self.scanner.between_requests() {
            return None;
        }
        if self.inflight.load(Ordering::Acquire) > 0 {
            // A look again within the idle timeout from now. A timer already armed that soon will do (usually the
            // previous request's idle deadline): no clock read and no earlier re-arm per request.
            if let Some(armed) = self.armed
                && armed <= self.last_activity + self.settings.idle_timeout
            {
                return Some((armed, Timer::Busy));
            }
            let now = Instant::now();
            if self.busy_recheck <= now {
                self.busy_recheck = now + self.settings.idle_timeout;
            }
            return Some((self.busy_recheck, Timer::Busy));
        }
        if self.scanner.heads == 0 {
            return Some((self.accepted + self.settings.header_timeout, Timer::Idle));
        }
        Some((self.last_activity + self.settings.idle_timeout, Timer::Idle))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    this.last_activity = Instant::now();
                    let was_in_head = this.scanner.head_in_progress();
                    if let Some(offset) = this.scanner.scan(&buf.filled()[before..]) {
                        // The refused head ends inside this read, so `offset < n` and the NUL byte fits.
                        buf.set_filled(before + offset);
                        buf.put_slice(b"\0");
                        this.closed = true;
                    }
                    if !this.scanner.head_in_progress() {
                        this.head_started = None;
                    } else if !was_in_head {
                        this.head_started = Some(this.last_activity);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => loop {
                let Some((deadline, kind)) = this.deadline() else {
                    return Poll::Pending;
                };
                if this.armed != Some(deadline) {
                    this.sleep.as_mut().reset(deadline);
                    this.armed = Some(deadline);
                }
                if this.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                match kind {
                    Timer::Idle => {
                        this.closed = true;
                        return Poll::Ready(Ok(()));
                    }
                    Timer::Header => {
                        this.closed = true;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request head timed out",
                        )));
                    }
                    Timer::Busy => this.armed = None,
                }
            },
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity = Instant::now();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity = Instant::now();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]]) -> Vec<Option<usize>> {
        let mut s = Scanner::new(64 * 1024);
        chunks.iter().map(|c| s.scan(c)).collect()
    }

    #[test]
    fn follows_pipelined_requests() {
        let data = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n\
POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
        let mut s = Scanner::new(1024);
        assert_eq!(s.scan(data), None);
        assert_eq!(s.heads, 4);
        assert!(s.between_requests());
        // Byte by byte gives the same.
        let mut s = Scanner::new(1024);
        for b in data.iter() {
            assert_eq!(s.scan(std::slice::from_ref(b)), None);
        }
        assert_eq!(s.heads, 4);
        assert!(s.between_requests());
    }

    #[test]
    fn body_bytes_are_not_heads() {
        // A body that looks like a smuggled request is just body.
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut s = Scanner::new(1024);
        assert_eq!(s.scan(head.as_bytes()), None);
        assert_eq!(s.scan(body), None);
        assert!(s.between_requests());
    }

    #[test]
    fn refuses_smuggling_shapes() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let ok = "GET /ok HTTP/1.1\r\n\r\n";
            let data = format!("{ok}{head}");
            assert_eq!(scan_all(&[data.as_bytes()]), [Some(ok.len())], "{head:?}");
            // Split: the head started in an earlier read -> refuse from the start of this read.
            let (a, b) = head.as_bytes().split_at(10);
            assert_eq!(scan_all(&[a, b]), [None, Some(0)], "{head:?}");
        }
    }

    #[test]
    fn accepts_normal_shapes() {
        for head in [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "\r\nGET / HTTP/1.1\n\n",
        ] {
            let mut s = Scanner::new(1024);
            assert_eq!(s.scan(head.as_bytes()), None, "{head:?}");
            assert!(s.between_requests(), "{head:?}");
        }
    }

    #[test]
    fn reads_split_anywhere_give_the_same_result() {
        let refused = "POST /r HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let ok = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\nGET /b HTTP/1.1\n\n\
POST /c HTTP/1.1\r\ntransfer-encoding: gzip,\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for data in [ok.to_string(), format!("{ok}{refused}")] {
            let data = data.as_bytes();
            let mut whole = Scanner::new(1024);
            let expect = whole.scan(data);
            for cut in 0..=data.len() {
                let mut s = Scanner::new(1024);
                let (a, b) = data.split_at(cut);
                let first = s.scan(a);
                let got = first.or_else(|| s.scan(b).map(|o| o + cut));
                match (expect, got) {
                    // Refused from the start of the refused head, or of the read it continues in.
                    (Some(e), Some(g)) => assert!(g == e || (g == cut && cut > e), "cut {cut}"),
                    (e, g) => assert_eq!(e, g, "cut {cut}"),
                }
                assert_eq!(s.heads, whole.heads, "cut {cut}");
                assert_eq!(s.between_requests(), whole.between_requests(), "cut {cut}");
            }
        }
    }

    #[test]
    fn oversized_head_is_left_to_hyper() {
        let mut s = Scanner::new(16);
        assert_eq!(
            s.scan(b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"),
            None
        );
        assert_eq!(s.state, State::Passthrough);
    }

    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn guarded(
        inflight: &Arc<AtomicUsize>,
    ) -> (tokio::io::DuplexStream, GuardedIo<tokio::io::DuplexStream>) {
        let (client, server) = tokio::io::duplex(4096);
        let settings = GuardSettings {
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            max_head: 1024,
        };
        (
            client,
            GuardedIo::new(server, settings, Arc::clone(inflight)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_connection_must_start_within_header_timeout() {
        let inflight = Arc::new(AtomicUsize::new(0));
        let (_client, mut io) = guarded(&inflight);
        let start = Instant::now();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 0, "closed quietly");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_head_times_out() {
        let inflight = Arc::new(AtomicUsize::new(0));
        let (mut client, mut io) = guarded(&inflight);
        client.write_all(b"GET / HTTP/1.1\r\nHost").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        client.write_all(b": a").await.unwrap();
        assert!(
            io.read(&mut buf).await.unwrap() > 0,
            "more bytes do not restart the head timer"
        );
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_only_between_requests() {
        let inflight = Arc::new(AtomicUsize::new(0));
        let (mut client, mut io) = guarded(&inflight);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        // Being served: no timeout however long it takes.
        inflight.fetch_add(1, Ordering::SeqCst);
        assert!(
            tokio::time::timeout(Duration::from_secs(600), io.read(&mut buf))
                .await
                .is_err()
        );
        inflight.fetch_sub(1, Ordering::SeqCst);
        io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let start = Instant::now();
        assert_eq!(
            io.read(&mut buf).await.unwrap(),
            0,
            "idle connection closed quietly"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
