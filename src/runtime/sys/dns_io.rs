//! The DNS client's sockets (src/runtime/dns/exchange.rs): a connected
//! UDP socket per name and server (the kernel picks a random source port,
//! RFC 5452 §9.2, and a connected socket takes datagrams from its server
//! only), poll(2) over them for the blocking driver, and one query over
//! TCP (RFC 7766, after a truncated UDP reply), all with deadlines and a
//! stop check every [`STOP_SLICE`], so that a thread leaves a silent
//! server at once when its loop shuts down.

use super::errno;
use socket2::{Protocol, SockAddr, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Longest single wait: how soon a stop request is seen.
pub(crate) const STOP_SLICE: Duration = Duration::from_millis(20);

/// A non-blocking UDP socket connected to `server`.
pub(crate) fn udp_to(server: SocketAddr) -> io::Result<UdpSocket> {
    super::udp::connect(server, None, None).map_err(io::Error::from_raw_os_error)
}

/// Wait at most `timeout` until one of `fds` is readable (or in error):
/// which ones are.
pub(crate) fn poll_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // Round up: a wait of 0.4 ms must not spin at 0.
    let ms = if ms == 0 && !timeout.is_zero() { 1 } else { ms };
    // SAFETY: pfds is a valid array of pfds.len() pollfd.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// Wait for `fd` to be ready for `events` until `deadline`, checking
/// `stop` every [`STOP_SLICE`].
fn wait(fd: RawFd, events: libc::c_short, deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<()> {
    loop {
        if stop() {
            return Err(io::Error::from_raw_os_error(libc::ECANCELED));
        }
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
        };
        let mut p = libc::pollfd { fd, events, revents: 0 };
        let ms = left.min(STOP_SLICE).as_millis().max(1) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
    }
}

/// Do `op` on a non-blocking stream, waiting for readiness as needed.
fn retry<T>(
    s: &mut TcpStream,
    events: libc::c_short,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
    mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op(s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                wait(s.as_raw_fd(), events, deadline, stop)?
            }
            other => return other,
        }
    }
}

/// Read exactly `buf.len()` bytes.
fn read_full(s: &mut TcpStream, buf: &mut [u8], deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = retry(s, libc::POLLIN, deadline, stop, |s| s.read(&mut buf[got..]))?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got += n;
    }
    Ok(())
}

/// Send `query` to `server` over TCP (two-byte length prefix, RFC 1035
/// §4.2.2) and read one reply, all before `deadline`.
pub(crate) fn tcp_exchange(server: SocketAddr, query: &[u8], deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::from_raw_os_error(libc::EMSGSIZE))?;
    let sock = super::bound_socket(server, Type::STREAM, Protocol::TCP, None, None).map_err(io::Error::from_raw_os_error)?;
    match sock.connect(&SockAddr::from(server)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut s = TcpStream::from(sock);
    wait(s.as_raw_fd(), libc::POLLOUT, deadline, stop)?;
    if let Some(e) = s.take_error()? {
        return Err(io::Error::from_raw_os_error(errno(e)));
    }
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(query);
    let mut sent = 0;
    while sent < out.len() {
        sent += retry(&mut s, libc::POLLOUT, deadline, stop, |s| s.write(&out[sent..]))?;
    }
    let mut len = [0u8; 2];
    read_full(&mut s, &mut len, deadline, stop)?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    read_full(&mut s, &mut reply, deadline, stop)?;
    Ok(reply)
}
