//! UDP attempts: a connected UDP socket is ready at once (the connect
//! only sets the peer and picks the route).

use super::{bound_socket, errno};
use socket2::{Protocol, SockAddr, Type};
use std::net::{SocketAddr, UdpSocket};

/// A non-blocking UDP socket connected to `addr`, bound as
/// [`super::bound_socket`] says; an errno when that fails.
pub(crate) fn connect(addr: SocketAddr, interface: Option<&str>, local: Option<SocketAddr>) -> Result<UdpSocket, i32> {
    let socket = bound_socket(addr, Type::DGRAM, Protocol::UDP, interface, local)?;
    socket.connect(&SockAddr::from(addr)).map_err(errno)?;
    Ok(socket.into())
}
