//! Preconnection: what to connect to and how to race, before Initiate.

use super::connection::{Connection, ConnectionHandler};
use super::endpoint::RemoteEndpoint;
use super::error::{Error, Result};
use super::event_loop::EventLoop;
use super::options::RacingOptions;
use super::properties::TransportProperties;
use crate::driver::conn::ConnCore;
use crate::driver::LoopShared;
use crate::engine::race::RaceConfig;
use std::sync::Arc;

/// Remote endpoints, transport properties and racing options on one loop
/// (RFC 9622 §6). Initiate races them (RFC 9623 §4).
///
/// cbindgen:ignore
pub struct Preconnection {
    lp: Arc<LoopShared>,
    remotes: Vec<RemoteEndpoint>,
    properties: TransportProperties,
    config: RaceConfig,
}

impl Preconnection {
    /// Copy `remotes` (each needs a host and a port) and check `options`
    /// (`None` for the defaults).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty list or an endpoint with no
    /// host or no port; [`Error::InvalidOption`] from
    /// [`RacingOptions::to_config`].
    pub fn new(
        event_loop: &EventLoop,
        remotes: &[RemoteEndpoint],
        properties: Option<&TransportProperties>,
        options: Option<&RacingOptions>,
    ) -> Result<Preconnection> {
        if remotes.is_empty() {
            return Err(Error::InvalidArgument("at least one remote endpoint is needed"));
        }
        if remotes.iter().any(|r| r.host().is_none()) {
            return Err(Error::InvalidArgument("a remote endpoint has no host name or address"));
        }
        if remotes.iter().any(|r| r.port().is_none()) {
            return Err(Error::InvalidArgument("a remote endpoint has no port"));
        }
        let config = options.copied().unwrap_or_default().to_config()?;
        Ok(Preconnection {
            lp: Arc::clone(&event_loop.shared),
            remotes: remotes.to_vec(),
            properties: properties.cloned().unwrap_or_default(),
            config,
        })
    }

    /// Start a race (RFC 8305, RFC 9623 §4) and return its Connection at
    /// once, establishing. The handler's `ready` or `establishment_error`
    /// follows on the loop's thread.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the loop was freed.
    pub fn initiate(&self, handler: Box<dyn ConnectionHandler>) -> Result<Connection> {
        let conn = self.new_connection();
        self.initiate_connection(&conn, handler)?;
        Ok(conn)
    }

    /// A Connection that is not racing yet: give it to
    /// [`Preconnection::initiate_connection`]. For bindings that need the
    /// handle before the race can call back.
    pub fn new_connection(&self) -> Connection {
        Connection::owned(ConnCore::new(Arc::clone(&self.lp)))
    }

    /// Start the race of a connection made by
    /// [`Preconnection::new_connection`] on this Preconnection's loop.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it already started, belongs to another
    /// loop, or the loop was freed.
    pub fn initiate_connection(&self, conn: &Connection, handler: Box<dyn ConnectionHandler>) -> Result<()> {
        if !Arc::ptr_eq(&conn.core.lp, &self.lp) {
            return Err(Error::InvalidState);
        }
        {
            let mut c = conn.core.lock();
            if c.handler.is_some() {
                return Err(Error::InvalidState);
            }
            c.handler = Some(handler);
        }
        let started = self.lp.start_race(&conn.core, &self.remotes, self.config);
        if started.is_err() {
            conn.core.lock().handler = None;
        }
        started
    }

    /// The transport properties.
    pub fn properties(&self) -> &TransportProperties {
        &self.properties
    }

    /// The remote endpoints, as copied.
    pub fn remotes(&self) -> &[RemoteEndpoint] {
        &self.remotes
    }
}

impl std::fmt::Debug for Preconnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preconnection").field("remotes", &self.remotes).field("config", &self.config).finish()
    }
}
