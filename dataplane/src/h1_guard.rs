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

/// Follows request framing on the inbound byte stream.
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    head: Vec<u8>,
    max_head: usize,
    size: u64,
    heads: u64,
}

impl Scanner {
    pub(crate) fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            max_head,
            size: 0,
            heads: 0,
        }
    }

    /// Whether the stream sits between requests with nothing of the next head received.
    fn between_requests(&self) -> bool {
        self.state == State::Head && self.head.is_empty()
    }

    fn head_in_progress(&self) -> bool {
        self.state == State::Head && !self.head.is_empty()
    }

    /// Feeds bytes just read; returns the offset in `data` from which the stream must be refused.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Passthrough => return None,
                State::Head => {
                    let start = if self.head.is_empty() {
                        while i < data.len() && (data[i] == b'\r' || data[i] == b'\n') {
                            i += 1;
                        }
                        i
                    } else {
                        0
                    };
                    let mut complete = false;
                    while i < data.len() {
                        let b = data[i];
                        i += 1;
                        self.head.push(b);
                        if b == b'\n'
                            && (self.head.ends_with(b"\n\n") || self.head.ends_with(b"\n\r\n"))
                        {
                            complete = true;
                            break;
                        }
                        if self.head.len() > self.max_head {
                            self.head = Vec::new();
                            self.state = State::Passthrough;
                            return None;
                        }
                    }
                    if !complete {
                        return None;
                    }
                    self.heads += 1;
                    let framing = analyze(&self.head);
                    self.head.clear();
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

/// Decides how a complete request head frames its body.
fn analyze(head: &[u8]) -> Framing {
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let method = request_line
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default();
    let http10 = request_line.ends_with(b"HTTP/1.0");
    let mut lengths = 0usize;
    let mut length = None;
    let mut te = false;
    let mut chunked = 0usize;
    let mut last_chunked = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|b| *b == b',') {
                let part = trim(part);
                lengths += 1;
                if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                    return Framing::Refuse;
                }
                length = std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            for coding in value
                .split(|b| *b == b',')
                .map(trim)
                .filter(|c| !c.is_empty())
            {
                last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                chunked += usize::from(last_chunked);
            }
        }
    }
    if te {
        if lengths > 0 || http10 || !last_chunked || chunked != 1 {
            return Framing::Refuse;
        }
        return Framing::Chunked;
    }
    if lengths > 1 {
        return Framing::Refuse;
    }
    if method == b"CONNECT" {
        return Framing::Passthrough;
    }
    match (lengths, length) {
        (0, _) => Framing::None,
        (_, Some(n)) => Framing::Length(n),
        (_, None) => Framing::Refuse,
    }
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
