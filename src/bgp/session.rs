//! One peer: the I/O around the pure FSM (`super::fsm`) and codec (`super::packet`).
//!
//! The task owns the FSM, at most one TCP connection (plus one pending outgoing connect),
//! the read buffer, the Adj-RIB-Out and the timers. It turns socket bytes, timer expiries,
//! API commands and export changes into FSM events and carries out the actions the FSM
//! returns; besides validating the peer's OPEN and keeping the RIBs it makes no protocol
//! decisions. A write that does not finish within [`WRITE_TIMEOUT`] drops the connection,
//! so a peer that stops reading cannot wedge the task.
//!
//! Collisions (RFC 4271 §6.8) are resolved when a second connection arrives: in
//! Idle/Connect/Active the incoming one is taken; in OpenSent/OpenConfirm the one the
//! higher BGP identifier initiated survives (while the peer's identifier is still unknown
//! the incoming connection replaces our own); an Established session refuses newcomers
//! with Cease / Connection Collision Resolution.

use super::exports::{self, Export, ExportSet};
use super::fsm::{self, Action, ErrorSide, Event, Fsm, State};
use super::packet::{
    self as pkt, Capability, Context, Message, NextHop, Notification, Open, SegmentKind, Update,
    AFI_IPV4, AFI_IPV6, SAFI_UNICAST,
};
use super::policy::{self, Stop};
use super::speaker::{lock, Command, SessionConfig, Shared, StateChange};
use ipnet::IpNet;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Longest a write may take before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection waits for the peer's FIN (`close_gracefully`).
const CLOSE_LINGER: Duration = Duration::from_secs(3);

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

/// An open connection and what its OPEN exchange settled.
/// Closes a connection the way a peer can read to the end: our FIN goes after what we
/// wrote (a NOTIFICATION), and what the peer still sends is read and discarded until its
/// FIN. Closing with unread input would send a RST instead, and a peer that sees the RST
/// first loses the NOTIFICATION (ExaBGP did). Bounded by `CLOSE_LINGER`.
async fn close_gracefully(mut stream: TcpStream) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    ctx: Context,
    local: SocketAddr,
    /// We connected out (vs. the peer connected to us).
    outgoing: bool,
    /// The peer's OPEN, once accepted.
    peer: Option<Open>,
}

impl Conn {
    fn new(stream: TcpStream, outgoing: bool) -> Option<Conn> {
        let local = stream.local_addr().ok()?;
        Some(Conn {
            stream,
            buf: Vec::with_capacity(pkt::MAX_MESSAGE_LEN),
            ctx: Context::default(),
            local,
            outgoing,
            peer: None,
        })
    }

    /// Address families both sides announced (no MP capability at all = IPv4 only).
    fn families(&self) -> (bool, bool) {
        let Some(o) = &self.peer else {
            return (false, false);
        };
        let mp = o
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }));
        let v4 = !mp || o.supports(AFI_IPV4, SAFI_UNICAST);
        (v4, o.supports(AFI_IPV6, SAFI_UNICAST))
    }

    fn local_ip(&self) -> IpAddr {
        self.local.ip().to_canonical()
    }
}

struct Session {
    cfg: SessionConfig,
    fsm: Fsm,
    shared: Arc<Shared>,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    exports: watch::Receiver<Arc<ExportSet>>,
    /// Routes announced to the peer, with the attributes they were sent with.
    rib_out: HashMap<IpNet, Export>,
    /// Stopped by the operator (or disabled): no automatic restart, no incoming sessions.
    stopped: bool,
}

pub async fn run(
    mut desired: watch::Receiver<SessionConfig>,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    exports: watch::Receiver<Arc<ExportSet>>,
) {
    let cfg = desired.borrow_and_update().clone();
    let mut s = Session {
        fsm: Fsm::new(fsm_config(&cfg)),
        stopped: !cfg.f.enabled,
        cfg,
        shared,
        conn: None,
        connecting: None,
        exports,
        rib_out: HashMap::new(),
    };
    if !s.stopped {
        s.event(Event::ManualStart).await;
    }
    s.publish();
    loop {
        let deadline = s.fsm.next_deadline();
        let established = s.fsm.state() == State::Established;
        tokio::select! {
            cmd = commands.recv() => {
                if !s.on_command(cmd).await {
                    return;
                }
            }
            r = desired.changed() => {
                // An action sends its command, then the configuration it implies (`stop`:
                // the Cease with the operator's text, then `enabled = false`): commands
                // queued before this change go first, as they were sent.
                while let Ok(cmd) = commands.try_recv() {
                    if !s.on_command(Some(cmd)).await {
                        return;
                    }
                }
                match r {
                    // New configuration: applied softly where possible, else a reset.
                    Ok(()) => {
                        let cfg = desired.borrow_and_update().clone();
                        s.configure(cfg).await;
                    }
                    // The handle is gone: the session was deleted (as `None` above).
                    Err(_) => {
                        s.on_command(None).await;
                        return;
                    }
                }
            }
            r = read(&mut s.conn) => s.received(r).await,
            r = connect_done(&mut s.connecting) => {
                s.connecting = None;
                s.connected(r).await;
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let actions = s.fsm.poll(Instant::now());
                s.act(actions).await;
            }
            r = s.exports.changed(), if established => {
                if r.is_ok() {
                    s.sync_routes(false).await;
                }
            }
        }
        s.publish();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}

/// Reads more bytes; pending forever without a connection.
async fn read(conn: &mut Option<Conn>) -> std::io::Result<usize> {
    match conn {
        Some(c) => {
            c.buf.reserve(pkt::MAX_MESSAGE_LEN);
            c.stream.read_buf(&mut c.buf).await
        }
        None => std::future::pending().await,
    }
}

async fn connect_done(c: &mut Option<Connecting>) -> std::io::Result<TcpStream> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn fsm_config(cfg: &SessionConfig) -> fsm::Config {
    fsm::Config {
        passive: cfg.f.passive,
        hold_time: cfg.f.hold_time,
        connect_retry: cfg.connect_retry,
        idle_hold: Duration::from_secs(5),
        idle_hold_max: Duration::from_secs(120),
    }
}

/// Fields whose change needs a new session (the rest apply softly).
fn needs_reset(a: &SessionConfig, b: &SessionConfig) -> bool {
    let (x, y) = (&a.f, &b.f);
    (
        x.neighbor,
        x.remote_as,
        x.hold_time,
        &x.password,
        x.local_address,
        x.local_port,
        x.remote_port,
        x.passive,
    ) != (
        y.neighbor,
        y.remote_as,
        y.hold_time,
        &y.password,
        y.local_address,
        y.local_port,
        y.remote_port,
        y.passive,
    ) || (a.local_as, a.router_id, a.connect_retry) != (b.local_as, b.router_id, b.connect_retry)
}

impl Session {
    /// Copies the FSM's view into the shared live state. A new error goes in before the
    /// state change is announced, so a drop is recorded with the NOTIFICATION that caused it.
    fn publish(&mut self) {
        let state = self.fsm.state();
        let received = lock(&self.shared.rib).len() as u64;
        let mut live = lock(&self.shared.live);
        if let Some((side, n)) = self.fsm.take_new_error() {
            let dir = match side {
                ErrorSide::Sent => "sent",
                ErrorSide::Received => "received",
            };
            live.last_error = Some(format!("{dir}: {}", n.describe()));
        }
        if live.state != state || live.last_change.is_none() {
            if live.state != state {
                let _ = self.shared.changes.send(StateChange {
                    session_id: self.cfg.id,
                    name: self.cfg.f.name.clone(),
                    from: live.state,
                    to: state,
                    last_error: live.last_error.clone(),
                });
            }
            live.last_change = Some(crate::time::now());
            live.state = state;
        }
        live.established_at = if state == State::Established {
            Some(live.established_at.unwrap_or_else(crate::time::now))
        } else {
            None
        };
        live.hold_time = self
            .fsm
            .negotiated_hold_time()
            .filter(|_| matches!(state, State::OpenConfirm | State::Established));
        live.remote_id = self
            .conn
            .as_ref()
            .and_then(|c| c.peer.as_ref())
            .map(|o| o.bgp_id);
        live.prefixes_received = received;
        live.prefixes_sent = self.rib_out.len() as u64;
    }

    fn set_error(&self, e: String) {
        log::info!("bgp: session {}: {e}", self.cfg.f.name);
        lock(&self.shared.live).last_error = Some(e);
    }

    async fn event(&mut self, e: Event) {
        let actions = self.fsm.handle(Instant::now(), e);
        self.act(actions).await;
    }

    /// Carries out FSM actions; failures that are themselves events (a write error is a
    /// TCP failure) go back into the FSM in order.
    async fn act(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            let follow = match a {
                Action::Connect => {
                    self.connecting = Some(self.connect());
                    None
                }
                Action::SendOpen { hold_time } => {
                    let open = self.our_open(hold_time);
                    self.send(&Message::Open(open)).await
                }
                Action::SendKeepalive => self.send(&Message::Keepalive).await,
                Action::SendNotification(n) => {
                    log::info!("bgp: session {}: sending {}", self.cfg.f.name, n.describe());
                    // Best effort: the connection is dropped right after.
                    let _ = self.send(&Message::Notification(n)).await;
                    None
                }
                Action::Drop => {
                    if let Some(conn) = self.conn.take() {
                        tokio::spawn(close_gracefully(conn.stream));
                    }
                    self.connecting = None;
                    None
                }
                Action::SessionUp { .. } => {
                    log::info!("bgp: session {} established", self.cfg.f.name);
                    self.publish();
                    self.full_sync(true).await
                }
                Action::SessionDown { reason } => {
                    log::info!("bgp: session {} down: {reason}", self.cfg.f.name);
                    lock(&self.shared.rib).clear();
                    lock(&self.shared.sent).clear();
                    self.rib_out.clear();
                    None
                }
                Action::ResendAnnouncements => self.full_sync(false).await,
            };
            if let Some(e) = follow {
                queue.extend(self.fsm.handle(Instant::now(), e));
            }
        }
    }

    fn connect(&self) -> Connecting {
        let f = &self.cfg.f;
        let peer = SocketAddr::new(f.neighbor, f.remote_port);
        let local = f.local_address;
        let key = f.password.clone();
        let timeout = self.cfg.connect_retry.max(Duration::from_secs(1));
        Box::pin(async move {
            super::net::connect(peer, local, key.as_deref().map(str::as_bytes), timeout).await
        })
    }

    async fn connected(&mut self, r: std::io::Result<TcpStream>) {
        match r.map(|s| Conn::new(s, true)) {
            Ok(Some(conn)) if self.conn.is_none() => {
                self.conn = Some(conn);
                self.event(Event::TcpConnected).await;
            }
            // An incoming connection got there first.
            Ok(_) => {}
            Err(e) => {
                let f = &self.cfg.f;
                self.set_error(format!(
                    "connect to {}: {e}",
                    SocketAddr::new(f.neighbor, f.remote_port)
                ));
                self.event(Event::TcpFailed).await;
            }
        }
    }

    /// Our BGP identifier: configured, else our IPv4 address on the session, else one
    /// derived from our IPv6 address (stable for the session's lifetime).
    fn our_id(&self) -> Ipv4Addr {
        if let Some(id) = self.cfg.router_id {
            return id;
        }
        let ip = self
            .conn
            .as_ref()
            .map(Conn::local_ip)
            .or(self.cfg.f.local_address);
        match ip {
            Some(IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
            Some(IpAddr::V6(v6)) => {
                let o = v6.octets();
                let mut id = [0u8; 4];
                for (i, b) in o.iter().enumerate() {
                    id[i % 4] ^= b;
                }
                id[0] |= 1;
                Ipv4Addr::from(id)
            }
            _ => Ipv4Addr::new(1, 0, 0, 1),
        }
    }

    fn our_open(&self, hold_time: u16) -> Open {
        Open {
            version: 4,
            asn: self.cfg.local_as,
            hold_time,
            bgp_id: self.our_id(),
            capabilities: vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                },
                Capability::Multiprotocol {
                    afi: AFI_IPV6,
                    safi: SAFI_UNICAST,
                },
                Capability::RouteRefresh,
                Capability::FourOctetAs(self.cfg.local_as),
            ],
        }
    }

    /// Writes one message; a failed or stuck write is a TCP failure.
    async fn send(&mut self, m: &Message) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        let mut buf = Vec::with_capacity(64);
        m.encode(&conn.ctx, &mut buf);
        self.write(&[buf]).await
    }

    async fn write(&mut self, msgs: &[Vec<u8>]) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        let r = tokio::time::timeout(WRITE_TIMEOUT, async {
            for m in msgs {
                conn.stream.write_all(m).await?;
            }
            conn.stream.flush().await
        })
        .await;
        match r {
            Ok(Ok(())) => {
                self.fsm.message_sent(Instant::now());
                None
            }
            Ok(Err(e)) => {
                self.set_error(format!("write: {e}"));
                self.conn = None;
                Some(Event::TcpFailed)
            }
            Err(_) => {
                self.set_error("write: the peer stopped reading".into());
                self.conn = None;
                Some(Event::TcpFailed)
            }
        }
    }

    // ---- receiving ----

    async fn received(&mut self, r: std::io::Result<usize>) {
        match r {
            Ok(0) => {
                self.set_error("connection closed by the peer".into());
                self.conn = None;
                self.event(Event::TcpFailed).await;
            }
            Err(e) => {
                self.set_error(format!("read: {e}"));
                self.conn = None;
                self.event(Event::TcpFailed).await;
            }
            Ok(_) => self.drain().await,
        }
    }

    /// Handles every whole message in the buffer.
    async fn drain(&mut self) {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let decoded = match pkt::frame(&conn.buf) {
                Ok(None) => return,
                Ok(Some(len)) => {
                    let m = pkt::decode(&conn.buf[..len], &conn.ctx);
                    conn.buf.drain(..len);
                    m
                }
                Err(n) => Err(n),
            };
            match decoded {
                Ok(m) => self.message(m).await,
                Err(notification) => {
                    self.event(Event::MessageError { notification }).await;
                    return;
                }
            }
        }
    }

    async fn message(&mut self, m: Message) {
        match m {
            Message::Open(o) => {
                let e = self.check_open(o);
                self.event(e).await;
            }
            Message::Keepalive => self.event(Event::KeepaliveReceived).await,
            Message::Update(u) => {
                self.event(Event::UpdateReceived).await;
                if self.fsm.state() == State::Established {
                    if let Some(e) = self.apply_update(u) {
                        self.event(e).await;
                    }
                }
            }
            Message::Notification(notification) => {
                log::info!(
                    "bgp: session {}: received {}",
                    self.cfg.f.name,
                    notification.describe()
                );
                self.event(Event::NotificationReceived { notification })
                    .await;
            }
            Message::RouteRefresh(_) => self.event(Event::RouteRefreshReceived).await,
        }
    }

    /// The session layer's part of OPEN processing (RFC 4271 §6.2): the peer's AS and
    /// identifier, and a family in common. The FSM checks the hold time.
    fn check_open(&mut self, o: Open) -> Event {
        let our_id = self.our_id();
        let reject = |sub: u8| Event::OpenRejected {
            notification: Notification::new(pkt::OPEN_MESSAGE_ERROR, sub),
        };
        if o.asn != self.cfg.f.remote_as {
            self.set_error(format!(
                "the peer says it is AS {}, configured remote_as is {}",
                o.asn, self.cfg.f.remote_as
            ));
            return reject(2);
        }
        if o.bgp_id.is_unspecified() || o.bgp_id == our_id {
            return reject(3);
        }
        let hold_time = o.hold_time;
        let Some(conn) = self.conn.as_mut() else {
            return Event::TcpFailed;
        };
        conn.ctx.four_octet_as = o.four_octet_as().is_some();
        conn.peer = Some(o);
        if conn.families() == (false, false) {
            conn.peer = None;
            return reject(7);
        }
        Event::OpenReceived { hold_time }
    }

    /// Applies an UPDATE to the Adj-RIB-In as [`policy::inbound`] says; an event when the
    /// prefix limit is exceeded.
    fn apply_update(&mut self, u: Update) -> Option<Event> {
        let local_ip = self.conn.as_ref().map(Conn::local_ip);
        let plan = policy::inbound(&u, self.cfg.local_as, self.cfg.f.remote_as, local_ip);
        for why in &plan.ignored {
            log::info!(
                "bgp: session {}: {why} (treat-as-withdraw)",
                self.cfg.f.name
            );
        }
        let mut rib = lock(&self.shared.rib);
        for p in &plan.withdraw {
            rib.remove(p);
        }
        for (nlri, attrs) in plan.announce {
            let fresh = nlri.iter().filter(|p| !rib.contains(p)).count();
            if policy::over_limit(rib.len() + fresh, self.cfg.f.max_prefixes) {
                drop(rib);
                let afi = match nlri.first() {
                    Some(IpNet::V4(_)) => AFI_IPV4,
                    _ => AFI_IPV6,
                };
                return Some(self.prefix_limit_reached(Some(afi)));
            }
            let id = rib.intern(attrs);
            for p in nlri {
                rib.insert(p, id);
            }
            rib.unused(id);
        }
        None
    }

    /// Cease / Maximum Number of Prefixes Reached; the session stays down until it is
    /// started again or its limit changes.
    fn prefix_limit_reached(&mut self, afi: Option<u16>) -> Event {
        let max = self.cfg.f.max_prefixes;
        self.set_error(format!(
            "the peer sent more than max_prefixes ({max}) routes; session stopped \
             (start or restart it after raising the limit)"
        ));
        self.stopped = true;
        Event::LocalError {
            notification: policy::max_prefix_cease(afi, max),
            auto_restart: false,
        }
    }

    // ---- sending our routes ----

    /// Sends everything we announce again (session up, route refresh, next hop changes);
    /// End-of-RIB after the initial announcement.
    async fn full_sync(&mut self, initial: bool) -> Option<Event> {
        self.rib_out.clear();
        if let Some(e) = self.sync_routes_inner().await {
            return Some(e);
        }
        if initial {
            let (v4, v6) = self.conn.as_ref().map_or((false, false), Conn::families);
            let mut msgs = Vec::new();
            for (on, afi) in [(v4, AFI_IPV4), (v6, AFI_IPV6)] {
                if on {
                    let mut b = Vec::new();
                    let ctx = self.conn.as_ref().map(|c| c.ctx).unwrap_or_default();
                    Message::Update(Update::end_of_rib(afi)).encode(&ctx, &mut b);
                    msgs.push(b);
                }
            }
            return self.write(&msgs).await;
        }
        None
    }

    async fn sync_routes(&mut self, full: bool) {
        let e = if full {
            self.full_sync(false).await
        } else {
            self.sync_routes_inner().await
        };
        if let Some(e) = e {
            self.event(e).await;
        }
    }

    /// Sends the difference between what we announce and what the export set says.
    async fn sync_routes_inner(&mut self) -> Option<Event> {
        let exports = self.exports.borrow_and_update().clone();
        let conn = self.conn.as_ref()?;
        let want = self.wanted(conn, &exports);
        let ctx = conn.ctx;
        let mut msgs = Vec::new();
        let gone: Vec<IpNet> = self
            .rib_out
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        pkt::encode_withdrawals(&ctx, &gone, &mut msgs);
        // Group what changed by attributes: one run of UPDATEs per attribute set.
        type Key<'a> = (Option<IpAddr>, &'a [u32], &'a [super::model::Community]);
        let mut groups: HashMap<Key<'_>, Vec<IpNet>> = HashMap::new();
        for (p, e) in &want {
            if self.rib_out.get(p) != Some(e) {
                groups
                    .entry((e.next_hop, &e.as_path, &e.communities))
                    .or_default()
                    .push(*p);
            }
        }
        for ((next_hop, path, communities), prefixes) in groups {
            let attrs = self.our_attributes(next_hop, path, communities);
            let v6_hop = match next_hop {
                Some(IpAddr::V6(a)) => NextHop::V6 {
                    global: a,
                    link_local: None,
                },
                _ => NextHop::V6 {
                    global: Ipv6Addr::UNSPECIFIED,
                    link_local: None,
                },
            };
            pkt::encode_announcements(&ctx, &attrs, &v6_hop, &prefixes, &mut msgs);
        }
        if msgs.is_empty() {
            return None;
        }
        if let Some(e) = self.write(&msgs).await {
            return Some(e);
        }
        self.rib_out = want;
        *lock(&self.shared.sent) = self.rib_out.keys().copied().collect();
        None
    }

    /// The exports for this session with concrete next hops; routes of a family the
    /// peer did not negotiate, without a usable next hop, or RPKI-invalid for the origin
    /// this session sends ([`exports::withheld`]) are left out.
    fn wanted(&self, conn: &Conn, exports: &ExportSet) -> HashMap<IpNet, Export> {
        let (v4, v6) = conn.families();
        let mut out: HashMap<IpNet, Export> = HashMap::new();
        let mut no_v6_hop = false;
        let vrps = exports.vrps.as_deref();
        for e in exports.routes.iter().filter(|e| {
            e.session_id.is_none_or(|s| s == self.cfg.id)
                && !exports::withheld(e, self.cfg.local_as, vrps)
        }) {
            let hop = match e.prefix {
                IpNet::V4(_) if v4 => e.next_hop.or(match conn.local_ip() {
                    IpAddr::V4(a) => Some(IpAddr::V4(a)),
                    IpAddr::V6(_) => None,
                }),
                IpNet::V6(_) if v6 => {
                    let hop = e.next_hop.or(self.cfg.f.next_hop_ipv6.map(IpAddr::V6)).or(
                        match conn.local_ip() {
                            IpAddr::V6(a) => Some(IpAddr::V6(a)),
                            IpAddr::V4(_) => None,
                        },
                    );
                    no_v6_hop |= hop.is_none();
                    hop
                }
                _ => None,
            };
            let Some(hop) = hop else { continue };
            // A session-specific announcement wins over one for every session.
            if e.session_id.is_none() && out.contains_key(&e.prefix) {
                continue;
            }
            let mut e = e.clone();
            e.next_hop = Some(hop);
            out.insert(e.prefix, e);
        }
        if no_v6_hop {
            self.set_error(
                "IPv6 routes not sent: the session runs over IPv4 and has no next_hop_ipv6".into(),
            );
        }
        out
    }

    fn our_attributes(
        &self,
        next_hop: Option<IpAddr>,
        path: &[u32],
        communities: &[super::model::Community],
    ) -> pkt::Attributes {
        use super::model::Community;
        let asns = exports::wire_path(self.cfg.local_as, self.cfg.f.remote_as, path);
        let as_path = if asns.is_empty() {
            Vec::new()
        } else {
            vec![pkt::Segment {
                kind: SegmentKind::Sequence,
                asns,
            }]
        };
        pkt::Attributes {
            origin: Some(pkt::Origin::Igp),
            as_path: Some(as_path),
            next_hop: match next_hop {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            },
            local_pref: (self.cfg.local_as == self.cfg.f.remote_as).then_some(100),
            communities: communities
                .iter()
                .filter_map(|c| match c {
                    Community::Standard(v) => Some(*v),
                    Community::Large(_) => None,
                })
                .collect(),
            large_communities: communities
                .iter()
                .filter_map(|c| match c {
                    Community::Large(v) => Some(*v),
                    Community::Standard(_) => None,
                })
                .collect(),
            ..Default::default()
        }
    }

    // ---- commands ----

    /// One command from the queue; false when the task ends (service stop, session deleted,
    /// or the queue gone with the speaker's handle).
    async fn on_command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Shutdown) => self.manual_stop(&Stop::ServiceStopping).await,
            None | Some(Command::Remove) => self.manual_stop(&Stop::Deleted).await,
            Some(cmd) => {
                self.command(cmd).await;
                return true;
            }
        }
        self.publish();
        false
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Start => {
                self.stopped = false;
                if self.fsm.state() == State::Idle {
                    self.event(Event::ManualStart).await;
                }
            }
            Command::Stop(msg) => {
                self.stopped = true;
                self.manual_stop(&Stop::Operator(msg)).await;
            }
            Command::Restart(msg) => {
                self.manual_stop(&Stop::Restart(msg)).await;
                self.stopped = false;
                self.event(Event::ManualStart).await;
            }
            Command::Refresh => self.refresh().await,
            Command::Incoming(stream) => self.incoming(stream).await,
            // Handled by the loop.
            Command::Shutdown | Command::Remove => {}
        }
    }

    async fn manual_stop(&mut self, why: &Stop) {
        let notification = policy::cease(why);
        self.event(Event::ManualStop { notification }).await;
        self.conn = None;
        self.connecting = None;
    }

    async fn configure(&mut self, cfg: SessionConfig) {
        let reset = needs_reset(&self.cfg, &cfg);
        let enabled = cfg.f.enabled;
        self.cfg = cfg;
        if !enabled {
            if !self.stopped {
                self.stopped = true;
                self.manual_stop(&Stop::Disabled).await;
            }
            return;
        }
        if reset || self.stopped {
            if self.fsm.state() != State::Idle {
                self.manual_stop(&Stop::Reconfigured).await;
            }
            self.fsm = Fsm::new(fsm_config(&self.cfg));
            self.stopped = false;
            self.event(Event::ManualStart).await;
        } else if self.fsm.state() == State::Established {
            // A lower prefix limit applies at once to what the peer already sent.
            let received = lock(&self.shared.rib).len();
            if policy::over_limit(received, self.cfg.f.max_prefixes) {
                let e = self.prefix_limit_reached(None);
                self.event(e).await;
                return;
            }
            // Next hop or AS changes: send our routes again where they differ.
            self.sync_routes(false).await;
        }
    }

    /// `reload`: ask the peer for its routes again and send ours again.
    async fn refresh(&mut self) {
        if self.fsm.state() != State::Established {
            return;
        }
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let (v4, v6) = conn.families();
        let rr = conn.peer.as_ref().is_some_and(Open::route_refresh);
        let mut msgs = Vec::new();
        if rr {
            for (on, afi) in [(v4, AFI_IPV4), (v6, AFI_IPV6)] {
                if on {
                    let mut b = Vec::new();
                    Message::RouteRefresh(pkt::RouteRefresh {
                        afi,
                        safi: SAFI_UNICAST,
                        subtype: 0,
                    })
                    .encode(&conn.ctx, &mut b);
                    msgs.push(b);
                }
            }
        }
        if let Some(e) = self.write(&msgs).await {
            self.event(e).await;
            return;
        }
        self.sync_routes(true).await;
    }

    /// A connection the peer opened (see the collision rules in the module doc).
    async fn incoming(&mut self, stream: TcpStream) {
        let Some(new) = Conn::new(stream, false) else {
            return;
        };
        if self.stopped {
            refuse(new, 5).await;
            return;
        }
        match self.fsm.state() {
            State::Idle | State::Connect | State::Active => {
                if self.fsm.state() == State::Idle {
                    self.event(Event::ManualStart).await;
                }
                self.connecting = None;
                self.conn = Some(new);
                self.event(Event::TcpConnected).await;
            }
            State::OpenSent | State::OpenConfirm => {
                let ours = self.our_id();
                let replace = self.conn.as_ref().is_none_or(|c| {
                    c.outgoing
                        && c.peer
                            .as_ref()
                            .is_none_or(|o| !fsm::keep_locally_initiated(ours, o.bgp_id))
                });
                if !replace {
                    refuse(new, 7).await;
                    return;
                }
                // The FSM sends the Cease on the old connection and drops it (Event 23).
                self.event(Event::CollisionDump).await;
                self.connecting = None;
                self.conn = Some(new);
                self.event(Event::TcpConnected).await;
            }
            State::Established => refuse(new, 7).await,
        }
    }
}

/// Closes a connection we do not take with a Cease (5 Connection Rejected, 7 Connection
/// Collision Resolution), best effort.
async fn refuse(mut conn: Conn, subcode: u8) {
    let mut b = Vec::new();
    Message::Notification(Notification::new(pkt::CEASE, subcode)).encode(&conn.ctx, &mut b);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.stream.write_all(&b)).await;
}
