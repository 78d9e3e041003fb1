//! Preconnection: what to connect to and how to race, before Initiate.

use super::connection::{Connection, ConnectionHandler, Handler};
use super::endpoint::{Host, LocalEndpoint, RemoteEndpoint};
use super::error::{Error, Result};
use super::event_loop::EventLoop;
use super::options::{BranchRacing, RacingOptions};
use super::properties::TransportProperties;
use crate::runtime::client::Client;
use crate::runtime::conn::ConnCore;
use crate::runtime::LoopCore;
use crate::runtime::RaceSpec;
use crate::engine::race::RaceConfig;
use crate::engine::tree::RacingType;
use crate::vocabulary::svcb::HttpsPolicy;
use crate::runtime::stage::{AlpnList, StageRace, StageSetup, UserStage};
use super::stage::{SecurityStage, StageAdapter};
use std::sync::Arc;

/// Remote endpoints, transport properties and racing options on one loop
/// (RFC 9622 §6). Initiate races them (RFC 9623 §4).
///
/// # Examples
///
/// Race to a listener on loopback and read which address won:
///
/// ```
/// use taps_racing::api::*;
/// use std::sync::{Arc, Mutex};
///
/// struct Won(Arc<Mutex<Option<std::net::SocketAddr>>>);
/// impl ConnectionHandler for Won {
///     fn ready(&mut self, c: &Connection) {
///         *self.0.lock().unwrap() = c.remote_address();
///     }
/// }
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let lp = EventLoop::new()?;
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("127.0.0.1")?.with_port(listener.local_addr()?.port())?;
/// let mut opts = RacingOptions::default();
/// opts.total_timeout_ms = 5000;
/// let pre = Preconnection::new(&lp, &[ep], None, Some(&opts))?;
/// let winner = Arc::new(Mutex::new(None));
/// let conn = pre.initiate(Box::new(Won(winner.clone())))?;
/// lp.run()?;
/// assert_eq!(*winner.lock().unwrap(), Some(listener.local_addr()?));
/// assert_eq!(conn.state(), ConnectionState::Established);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct Preconnection {
    lp: Arc<LoopCore>,
    /// The loop handle's client: races started here are that client's.
    client: Arc<Client>,
    remotes: Vec<RemoteEndpoint>,
    locals: Vec<LocalEndpoint>,
    properties: TransportProperties,
    config: RaceConfig,
    racing: BranchRacing,
    /// When to ask HTTPS records.
    https: HttpsPolicy,
    /// HEv3 draft §6.3: never race before the HTTPS answers.
    ech_required: bool,
    /// The ALPN ids to offer (set_alpn).
    alpn: Arc<AlpnList>,
    /// The ALPN ids each protocol serves (set_protocol_alpn), by protocol
    /// name.
    protocol_alpn: Vec<(String, Vec<String>)>,
    /// The security stage each TCP attempt runs (set_security_stage).
    stage: Option<Arc<dyn UserStage>>,
}

/// A level of the candidate tree (RFC 9623 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchKind {
    /// Paths: interfaces and local endpoints.
    Path,
    /// Protocols on a path.
    Protocol,
    /// Endpoints (resolved addresses) of a protocol on a path.
    Endpoint,
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
        if remotes.iter().any(|r| matches!(r.host(), Some(Host::Name(_)))) {
            // Its races will ask the system resolver: have its threads
            // started by then, not on the race's clock.
            event_loop.shared.prepare_resolver();
        }
        Ok(Preconnection {
            lp: Arc::clone(&event_loop.shared),
            client: Arc::clone(&event_loop.client),
            remotes: remotes.to_vec(),
            locals: Vec::new(),
            properties: properties.cloned().unwrap_or_default(),
            racing: BranchRacing::delayed(config.connection_attempt_delay),
            config,
            https: HttpsPolicy::default(),
            ech_required: false,
            alpn: Arc::default(),
            protocol_alpn: Vec::new(),
            stage: None,
        })
    }

    /// When the races ask HTTPS records for host names: [`HttpsPolicy::Auto`]
    /// (default: port 443 only), [`HttpsPolicy::On`] (any port, as
    /// `_PORT._https.host` when not 443, RFC 9460 §9.1), [`HttpsPolicy::Off`].
    /// HTTPS records are asked of a user resolver
    /// ([`super::Resolver::resolve_https`]); races of a pool or a group do
    /// not ask them.
    pub fn set_https_policy(&mut self, policy: HttpsPolicy) {
        self.https = policy;
    }

    /// ECH required (HEv3 draft §6.3, RFC 9460 §5.1): racing never starts
    /// before every HTTPS question has ended, and records with an ECH
    /// config are tried before those without. Default: off.
    pub fn set_ech_required(&mut self, required: bool) {
        self.ech_required = required;
    }

    /// Start a race (RFC 8305, RFC 9623 §4) and return its Connection at
    /// once, establishing. The handler's `ready` or `establishment_error`
    /// follows on the loop's thread.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the loop was freed or released (this
    /// handle's), or its thread is stopping.
    pub fn initiate(&self, handler: Box<dyn ConnectionHandler>) -> Result<Connection> {
        let conn = self.new_connection();
        self.initiate_connection(&conn, handler)?;
        Ok(conn)
    }

    /// A Connection that is not racing yet: give it to
    /// [`Preconnection::initiate_connection`]. For bindings that need the
    /// handle before the race can call back.
    pub fn new_connection(&self) -> Connection {
        Connection::owned(ConnCore::new(Arc::clone(&self.lp), Arc::clone(&self.client)))
    }

    /// Start the race of a connection made by
    /// [`Preconnection::new_connection`] on this Preconnection's loop.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it already started, belongs to another
    /// loop (or another handle of a shared loop), or the loop was freed,
    /// released, or is stopping its thread.
    pub fn initiate_connection(&self, conn: &Connection, handler: Box<dyn ConnectionHandler>) -> Result<()> {
        if !Arc::ptr_eq(&conn.core.lp, &self.lp) || !Arc::ptr_eq(&conn.core.client, &self.client) {
            return Err(Error::InvalidState);
        }
        conn.core.install_handler(Box::new(Handler(handler)))?;
        if let Some(stage) = &self.stage {
            let setup = StageSetup { stage: Arc::clone(stage), alpn: Arc::clone(&self.alpn), host: self.host_name() };
            // Set once: a race that could not start keeps its first stage
            // for the next try.
            let _ = conn.core.stage.set(Box::new(StageRace::new(setup)));
        }
        let spec = RaceSpec {
            remotes: &self.remotes,
            locals: &self.locals,
            selection: &self.properties.selection,
            config: self.racing.apply(self.config),
            racing: self.racing,
            avoid: &[],
            https: self.https,
            alpn: &self.alpn.names,
            ech_required: self.ech_required,
            protocol_alpn: &self.protocol_alpn,
        };
        let started = self.lp.start_race(&conn.core, &spec);
        if started.is_err() {
            conn.core.remove_handler();
        }
        started
    }

    /// Add a local endpoint: each one is a path branch of the race (RFC
    /// 9623 §4.1); attempts on it bind to its interface, address and port.
    /// With none, the system chooses (or the interface preferences of the
    /// transport properties pick interfaces).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past 64 local endpoints.
    pub fn add_local_endpoint(&mut self, local: &LocalEndpoint) -> Result<()> {
        if self.locals.len() >= 64 {
            return Err(Error::InvalidArgument("at most 64 local endpoints"));
        }
        self.locals.push(local.clone());
        Ok(())
    }

    /// How branches of `kind` race each other (RFC 9623 §4.3). For
    /// [`RacingType::Delayed`], a delay of 0 means the Connection Attempt
    /// Delay; other delays are clamped like it, to [10, 2000] ms.
    pub fn set_racing_type(&mut self, kind: BranchKind, racing: RacingType) {
        let racing = match racing {
            RacingType::Delayed(0) => RacingType::Delayed(self.config.connection_attempt_delay),
            RacingType::Delayed(d) => RacingType::Delayed(d.clamp(10_000, 2_000_000)),
            other => other,
        };
        match kind {
            BranchKind::Path => self.racing.path = racing,
            BranchKind::Protocol => self.racing.protocol = racing,
            BranchKind::Endpoint => self.racing.endpoint = racing,
        }
    }

    /// The ALPN ids (RFC 7301) this caller can use, most preferred first
    /// (e.g. `["h2", "http/1.1"]`): given to the security stage of each
    /// attempt ([`super::StageAttempt::alpn`]) for TLS to offer. With HTTPS
    /// records (HEv3 draft §6.2, RFC 9460 §7.1.2), a record whose ALPN set
    /// has none of them is skipped, and each attempt's report lists the
    /// ids usable with its record, in this order. `&[]` (the default):
    /// any. Races started later use it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an id that is empty, longer than 255
    /// bytes or holds a NUL byte, or more than 64 ids (nothing changes).
    pub fn set_alpn(&mut self, ids: &[&str]) -> Result<()> {
        if ids.len() > 64 {
            return Err(Error::InvalidArgument("at most 64 ALPN ids"));
        }
        self.alpn = Arc::new(AlpnList::new(ids).map_err(Error::InvalidArgument)?);
        Ok(())
    }

    /// The ALPN ids set with [`Preconnection::set_alpn`].
    pub fn alpn(&self) -> &[String] {
        &self.alpn.names
    }

    /// Say which ALPN ids (RFC 7301) `protocol` serves (HEv3 draft §5.1,
    /// §6), e.g. a QUIC user protocol `"h3"`, built-in `"tcp"` `"h2"` and
    /// `"http/1.1"`. `protocol` is a name registered on the loop (`"tcp"`,
    /// `"udp"`, or one given to [`super::EventLoop::add_protocol`]). Each
    /// PROTOCOL branch of the races initiated later then races only:
    /// - the addresses of HTTPS services (RFC 9460) whose usable ALPN ids
    ///   (RFC 9460 §7.1.2, kept to [`Preconnection::set_alpn`]'s when set)
    ///   share one with `ids`;
    /// - the fallback (addresses no record claims, and every address of a
    ///   race that asks no HTTPS record) only when `ids` has `"http/1.1"`.
    ///
    /// A protocol with no ids set (the default, or `ids` = `&[]`) races
    /// every candidate, as without HTTPS records.
    ///
    /// When every protocol of a path has ids (and `race_count` is 1), the
    /// protocols do not race as branches: their (address, protocol)
    /// candidates are one list in HEv3 §5 order (service groups by
    /// SvcPriority, fallback last; each address with the protocols that
    /// serve it, in protocol order), raced one attempt at a time with the
    /// Connection Attempt Delay between starts (HEv3 §6): QUIC to an
    /// address at 0 ms, TCP to it at 250 ms, the next address's QUIC at
    /// 500 ms; a failure starts the next at once. Otherwise the branches
    /// race each other as [`Preconnection::set_racing_type`] says for the
    /// PROTOCOL level, one race of endpoints per branch.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (nothing changes) when no protocol of
    /// that name is registered on the loop, for an id that is empty,
    /// longer than 255 bytes or holds a NUL byte, or more than 64 ids.
    pub fn set_protocol_alpn(&mut self, protocol: &str, ids: &[&str]) -> Result<()> {
        if !self.lp.has_protocol(protocol) {
            return Err(Error::InvalidArgument("no protocol of this name is registered on the loop"));
        }
        if ids.len() > 64 {
            return Err(Error::InvalidArgument("at most 64 ALPN ids"));
        }
        let list = AlpnList::new(ids).map_err(Error::InvalidArgument)?;
        self.protocol_alpn.retain(|(name, _)| name != protocol);
        if !ids.is_empty() {
            self.protocol_alpn.push((protocol.to_owned(), list.names));
        }
        Ok(())
    }

    /// The ALPN ids `protocol` serves ([`Preconnection::set_protocol_alpn`]);
    /// empty for none set.
    pub fn protocol_alpn(&self, protocol: &str) -> &[String] {
        self.protocol_alpn.iter().find(|(n, _)| n == protocol).map_or(&[], |(_, ids)| ids)
    }

    /// Run `stage` (the caller's TLS) on the connected socket of each
    /// built-in TCP attempt of the races this Preconnection initiates: an
    /// attempt then wins when its stage reports ready, at the end of its
    /// handshake (draft-ietf-happy-happyeyeballs-v3-04 §6.1). `None`
    /// removes it. See [`super::stage`] for threads and ownership. Races
    /// already started keep theirs.
    pub fn set_security_stage(&mut self, stage: Option<Arc<dyn SecurityStage>>) {
        self.stage = stage.map(|s| Arc::new(StageAdapter(s)) as Arc<dyn UserStage>);
    }

    /// The first remote endpoint's host name, for SNI.
    fn host_name(&self) -> Option<Arc<std::ffi::CStr>> {
        self.remotes.iter().find_map(|r| r.name_cstring()).map(Arc::from)
    }

    /// A copy of what a race needs, for a pool.
    pub(crate) fn owned_spec(&self) -> crate::runtime::pool::OwnedSpec {
        crate::runtime::pool::OwnedSpec {
            remotes: self.remotes.clone(),
            locals: self.locals.clone(),
            selection: self.properties.selection.clone(),
            config: self.racing.apply(self.config),
            racing: self.racing,
            https: self.https,
            alpn: self.alpn.names.clone(),
            ech_required: self.ech_required,
            protocol_alpn: self.protocol_alpn.clone(),
        }
    }

    pub(crate) fn loop_shared(&self) -> &Arc<LoopCore> {
        &self.lp
    }

    pub(crate) fn client(&self) -> Arc<Client> {
        Arc::clone(&self.client)
    }

    /// The racing types of the three levels.
    pub fn racing(&self) -> BranchRacing {
        self.racing
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
