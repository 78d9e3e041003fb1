//! TCP attempts: a non-blocking connect from a socket bound to its path,
//! and its readiness, checked with SO_ERROR and getpeername.

pub(crate) use super::errno;
use super::bound_socket;
use socket2::{Protocol, SockAddr, Type};
use std::io;
use std::net::SocketAddr;

/// Start a non-blocking connect to `addr` from a socket bound as
/// [`super::bound_socket`] says. The stream, and whether it connected at
/// once (loopback may); an errno when the connect failed.
pub(crate) fn connect(
    addr: SocketAddr,
    interface: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<(mio::net::TcpStream, bool), i32> {
    let socket = bound_socket(addr, Type::STREAM, Protocol::TCP, interface, local)?;
    let connected = match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(errno(e)),
    };
    Ok((mio::net::TcpStream::from_std(std::net::TcpStream::from(socket)), connected))
}

/// State of a pending connect after a readiness event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Connected.
    Ready,
    /// Failed with this errno.
    Failed(i32),
    /// Not decided yet (spurious wake-up).
    Waiting,
}

/// Check a pending connect, as mio's docs say: SO_ERROR first, then
/// getpeername.
///
/// After a poll event, `writable: Some(true)` (writable, no error) means
/// connected: epoll reports EPOLLOUT once the handshake is done, which
/// saves the getpeername of the general check.
pub(crate) fn progress_after(stream: &mio::net::TcpStream, writable: Option<bool>) -> Progress {
    match stream.take_error() {
        Ok(Some(e)) => return Progress::Failed(errno(e)),
        Err(e) => return Progress::Failed(errno(e)),
        Ok(None) => {}
    }
    if writable == Some(true) {
        return Progress::Ready;
    }
    match stream.peer_addr() {
        Ok(_) => Progress::Ready,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) || e.kind() == io::ErrorKind::NotConnected => Progress::Waiting,
        Err(e) => Progress::Failed(errno(e)),
    }
}

/// The kernel's smoothed RTT of a connected TCP socket, µs (`TCP_INFO`'s
/// `tcpi_rtt`; right after the handshake, the SYN/ACK's RTT as the kernel
/// measured it). `None` if the socket does not say.
pub(crate) fn smoothed_rtt_us(stream: &mio::net::TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid fd, a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0 && info.tcpi_rtt > 0).then_some(info.tcpi_rtt)
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn refused_port_fails_with_econnrefused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        match mio::net::TcpStream::connect(addr) {
            Err(e) => assert_eq!(errno(e), libc::ECONNREFUSED),
            Ok(s) => {
                let mut p = Progress::Waiting;
                for _ in 0..1000 {
                    p = progress_after(&s, None);
                    if p != Progress::Waiting {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                assert_eq!(p, Progress::Failed(libc::ECONNREFUSED));
            }
        }
    }

    #[test]
    fn a_connected_socket_reports_its_smoothed_rtt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = mio::net::TcpStream::from_std(s);
        let rtt = smoothed_rtt_us(&stream).expect("TCP_INFO after the handshake");
        assert!(rtt < 1_000_000, "{rtt} µs on loopback");
    }
}
