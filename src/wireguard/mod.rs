//! WireGuard servers and clients: the desired state the running devices are built from,
//! and the one service that changes it.
//!
//! ```text
//!  api::wireguard ─► Service ─► Store::write(write::*_in: model rules + SQL) ─► commit
//!                       │
//!                       └─► Bus::publish(Change::Server | Client | Allocation)
//!                               └─► live::Reconciler (an Applier): the device of that server,
//!                                   or that one peer, made to match the rows ─► device::engine
//! ```
//!
//! - [`model`]: pure validation, conflict rules, address allocation, views, client configs.
//! - [`write`]: each write as one transaction over those rules.
//! - [`live`]: the reconciler, and the live fields (status, handshake, bytes, endpoint) the
//!   views show, read from one snapshot of each device per request.
//! - [`listing`]: the client list, each item rendered once per version of its row.
//! - [`device`]: the userspace datapath, which knows nothing of the database.
//!
//! Explicit actions whose device error the caller must see (`start`) drive the reconciler
//! directly; every other write only commits and publishes.

pub mod conf;
pub mod delegated;
pub mod device;
pub mod error;
pub mod keys;
pub mod listing;
pub mod live;
pub mod model;
pub mod pool_rules;
pub mod qr;
mod write;

pub use crate::store::wireguard::{
    ClientFields, ClientFilter, ClientRow, LastSeen, ServerFields, ServerRow,
};
pub use error::{Error, Result};
pub use live::Reconciler;
pub use model::*;
pub use write::Imported;

use crate::changes::{Bus, Change, Op};
use crate::input::Page;
use crate::ipam::Pools;
use crate::store::wireguard as q;
use crate::store::{in_transaction, Store};
use crate::wireguard::device::engine::{Engine, ServerState};
use crate::wireguard::keys::{PresharedKey, PrivateKey};
use listing::{ClientList, Listing};
use std::sync::Arc;
use write::Deleted;

/// WireGuard servers and clients: their rules, their rows, and (through the bus and the
/// [`Reconciler`]) their running devices.
#[derive(Clone)]
pub struct Service {
    store: Store,
    engine: Arc<Engine>,
    bus: Bus,
    /// The IPv6 pools' allocators: deleting a client releases its delegated prefixes.
    pools: Pools,
    reconciler: Arc<Reconciler>,
    /// The client list's rendered items.
    listing: Arc<Listing>,
    /// `public_host` of the configuration: where client configs point when a server names
    /// no `endpoint` (else the host the API request was addressed to).
    public_host: Option<String>,
}

/// A server's running state as the views show it, and what a write's answer says.
pub struct ServerOutcome {
    pub view: ServerView,
    /// The server should run (`is_active`) but does not: its start failed (`last_error`).
    pub start_failed: bool,
}

impl Service {
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        bus: Bus,
        pools: Pools,
        reconciler: Arc<Reconciler>,
        public_host: Option<String>,
    ) -> Service {
        Service {
            store,
            engine,
            bus,
            pools,
            reconciler,
            listing: Arc::default(),
            public_host,
        }
    }

    /// The applier to register on the bus (once, in `App::open`).
    pub fn reconciler(&self) -> Arc<Reconciler> {
        self.reconciler.clone()
    }

    /// Takes every device down at service stop, keeping where their peers were.
    pub async fn stop_all(&self) {
        self.reconciler.stop_all().await;
    }

    /// Where client configs point when their server names no endpoint.
    pub fn fallback_host<'a>(&'a self, request_host: &'a str) -> &'a str {
        self.public_host.as_deref().unwrap_or(request_host)
    }

    // ---- servers ----

    async fn outcome(&self, id: i64) -> Result<ServerOutcome> {
        let (row, n) = self.server_summary(id).await?;
        let view = self.server_view(row, n).await;
        Ok(ServerOutcome {
            start_failed: view.is_active && view.status != "running",
            view,
        })
    }

    pub async fn create_server(&self, input: NewServer) -> Result<ServerOutcome> {
        let key = PrivateKey::generate();
        let now = crate::time::now();
        let row = self
            .store
            .write(move |tx| write::create_server_in(tx, input, &key, now))
            .await?;
        self.bus.publish(server_change(row.id, Op::Added)).await;
        self.outcome(row.id).await
    }

    pub async fn get_server(&self, id: i64) -> Result<ServerView> {
        let (row, n) = self.server_summary(id).await?;
        Ok(self.server_view(row, n).await)
    }

    async fn server_summary(&self, id: i64) -> Result<(ServerRow, u64)> {
        self.store
            .run(move |c| {
                let s = write::server_or_404(c, id)?;
                Ok((s, q::count_clients(c, id)?))
            })
            .await
    }

    /// One page of servers, each with its number of clients, and the total (as stored).
    pub async fn server_rows(&self, page: Page) -> Result<(Vec<(ServerRow, u64)>, u64)> {
        Ok(self
            .store
            .call(move |c| q::list_servers(c, page.size, page.offset()))
            .await?)
    }

    /// One page of servers with their live state; `status` (running, stopped, error) keeps
    /// only servers in that state.
    pub async fn list_servers(
        &self,
        page: Page,
        status: Option<&str>,
    ) -> Result<(Vec<ServerView>, u64)> {
        let states = self.engine.states().await;
        let state_of = |id: i64| states.get(&id).cloned().unwrap_or(ServerState::Stopped);
        let (rows, total) = match status {
            None => self.server_rows(page).await?,
            // Status is live, not stored: filter the (few) servers here, then paginate.
            Some(s) => {
                let all = Page {
                    page: 1,
                    size: u32::MAX,
                };
                let (all, _) = self.server_rows(all).await?;
                let matching: Vec<(ServerRow, u64)> = all
                    .into_iter()
                    .filter(|(row, _)| state_of(row.id).as_str() == s)
                    .collect();
                let total = matching.len() as u64;
                let rows = matching
                    .into_iter()
                    .skip(page.offset() as usize)
                    .take(page.size as usize)
                    .collect();
                (rows, total)
            }
        };
        let views = rows
            .into_iter()
            .map(|(row, n)| {
                let state = state_of(row.id);
                live::view_with_state(row, n, &state)
            })
            .collect();
        Ok((views, total))
    }

    /// A subnet change must keep every client's address valid. The device follows
    /// (restarted when its interface settings changed, started or stopped with `is_active`).
    pub async fn update_server(&self, id: i64, changes: ServerChanges) -> Result<ServerOutcome> {
        let now = crate::time::now();
        self.store
            .write(move |tx| write::update_server_in(tx, id, changes, now))
            .await?;
        self.bus.publish(server_change(id, Op::Changed)).await;
        self.outcome(id).await
    }

    /// Deletes a server and (with `force`) its clients; returns how many clients went.
    pub async fn delete_server(&self, id: i64, force: bool) -> Result<usize> {
        let d = self
            .delete(move |tx| write::delete_server_in(tx, id, force))
            .await?;
        let mut changes = vec![server_change(id, Op::Removed)];
        changes.extend(d.released);
        self.bus.publish_all(changes).await;
        Ok(d.clients.len())
    }

    /// Runs a delete and applies the prefixes it released to the pools' allocators in the
    /// same database closure, after the commit.
    async fn delete<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<Deleted<T>> + Send + 'static,
    ) -> Result<Deleted<T>> {
        let pools = self.pools.clone();
        self.store
            .run(move |c| {
                let mut d = in_transaction(c, f)?;
                pools.apply(std::mem::take(&mut d.freed));
                Ok(d)
            })
            .await
    }

    /// Starts the server now and records that it should run; a device error is the answer
    /// (and the server stays as it was marked).
    pub async fn start_server(&self, id: i64) -> Result<ServerView> {
        let (row, n) = self.reconciler.start_server(id).await?;
        self.bus.publish(server_change(id, Op::Changed)).await;
        Ok(self.server_view(row, n).await)
    }

    /// Stops the server and records that it should not run.
    pub async fn stop_server(&self, id: i64) -> Result<ServerView> {
        self.reconciler.stop_server(id).await?;
        self.bus.publish(server_change(id, Op::Changed)).await;
        let (row, n) = self.server_summary(id).await?;
        Ok(self.server_view(row, n).await)
    }

    /// Takes over an existing wg-quick server config: the server from `[Interface]` (its
    /// private key kept), one client per `[Peer]` named `peer-N` (wg-quick files carry no
    /// names). A peer's first `/32` inside the server's IPv4 subnet and first `/128` inside
    /// its IPv6 subnet become its addresses, its other AllowedIPs its routed prefixes. All
    /// or nothing; the server is stored inactive.
    pub async fn import_server(&self, input: ImportServer) -> Result<(ServerView, Imported)> {
        let plan = write::plan_import(input)?;
        let now = crate::time::now();
        let imported = self
            .store
            .write(move |tx| write::import_in(tx, plan, now))
            .await?;
        let id = imported.server.id;
        let mut changes = vec![server_change(id, Op::Added)];
        changes.extend(imported.clients.iter().map(|c| client_change(c, Op::Added)));
        self.bus.publish_all(changes).await;
        let n = imported.clients.len() as u64;
        let view = self.server_view(imported.server.clone(), n).await;
        Ok((view, imported))
    }

    /// The API view of a server with its live state.
    pub async fn server_view(&self, server: ServerRow, clients_count: u64) -> ServerView {
        let state = self.engine.state(server.id).await;
        live::view_with_state(server, clients_count, &state)
    }

    // ---- clients ----

    /// Creates a client, allocating the lowest free address of each family its server has
    /// unless given. The answer carries, once, its private key (when generated here), its
    /// config and QR code. `fallback_host` is where its config points when the server names
    /// no endpoint: a config that would not fit a QR code is refused.
    pub async fn create_client(
        &self,
        input: NewClient,
        fallback_host: &str,
    ) -> Result<CreatedClientView> {
        let keys = ClientKeys::new(
            input.public_key.as_deref(),
            input.use_preshared_key.unwrap_or(false),
        )?;
        let now = crate::time::now();
        let host = fallback_host.to_string();
        let (server, client) = self
            .store
            .write(move |tx| {
                let client = write::create_client_in(tx, input, keys, &host, now)?;
                Ok::<_, Error>((write::server_or_404(tx, client.server_id)?, client))
            })
            .await?;
        self.bus.publish(client_change(&client, Op::Added)).await;
        // The config needs an endpoint; without one (no server endpoint, public_host or Host
        // header) the client is still created and its config can be fetched later. The QR
        // code was checked to fit before the commit; nothing after it may fail the request.
        let config = client_config(&server, &client, fallback_host).ok();
        let qrcode = config.as_deref().and_then(|c| {
            qr::data_url(c)
                .inspect_err(|e| log::warn!("client {}: QR code: {e}", client.id))
                .ok()
        });
        Ok(CreatedClientView {
            private_key: client.private_key.clone(),
            client: self.client_view(client).await,
            config,
            qr_code: qrcode.clone(),
            qrcode,
        })
    }

    pub async fn get_client(&self, id: i64) -> Result<ClientView> {
        let c = self.store.run(move |c| write::client_or_404(c, id)).await?;
        Ok(self.client_view(c).await)
    }

    /// One page of clients matching `filter`, and the total; their live fields come from
    /// one read of each running device on the page (see [`listing`]).
    pub async fn list_clients(
        &self,
        filter: ClientFilter,
        page: Page,
    ) -> Result<(ClientList, u64)> {
        let listing = self.listing.clone();
        let (versions, kept, rows, total) = self
            .store
            .call(move |c| {
                let (versions, total) = q::client_page(c, &filter, page.size, page.offset())?;
                let kept = listing.kept(&versions);
                let missing: Vec<i64> = versions
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| k.is_none())
                    .map(|(v, _)| v.id)
                    .collect();
                let rows = match missing.is_empty() {
                    true => Vec::new(),
                    false => q::clients_with_rev(c, &missing)?,
                };
                Ok((versions, kept, rows, total))
            })
            .await?;
        let items = self.listing.fill(&versions, kept, rows).map_err(|e| {
            log::error!("client list: {e}");
            Error::Internal
        })?;
        let on = ClientList::on_device(&items);
        let live = live::live_of(&self.engine, &on, std::time::SystemTime::now()).await;
        Ok((ClientList::new(items, live), total))
    }

    /// `fallback_host` as for [`Service::create_client`].
    pub async fn update_client(
        &self,
        id: i64,
        changes: ClientChanges,
        fallback_host: &str,
    ) -> Result<ClientView> {
        let psk = PresharedKey::generate().to_base64();
        let now = crate::time::now();
        let host = fallback_host.to_string();
        let (_, new) = self
            .store
            .write(move |tx| write::update_client_in(tx, id, changes, psk, &host, now))
            .await?;
        self.bus.publish(client_change(&new, Op::Changed)).await;
        Ok(self.client_view(new).await)
    }

    /// The client's IPv6 prefix allocations are released with it.
    pub async fn delete_client(&self, id: i64) -> Result<()> {
        let d = self
            .delete(move |tx| write::delete_client_in(tx, id))
            .await?;
        let mut changes = vec![client_change(&d.row, Op::Removed)];
        changes.extend(d.released);
        self.bus.publish_all(changes).await;
        Ok(())
    }

    /// The client's wg-quick config and its name; 409 when its private key is not stored.
    pub async fn client_config(&self, id: i64, fallback_host: &str) -> Result<(String, String)> {
        let (server, client) = self.client_with_server(id).await?;
        let config = client_config(&server, &client, fallback_host)?;
        Ok((client.name, config))
    }

    /// The client's config as a QR code (a PNG `data:` URL). 422 (naming the field that
    /// takes most of the config) when it does not fit: creates and updates refuse that, but
    /// the server's DNS or endpoint may have grown since. The config itself is still there
    /// to download.
    pub async fn client_qrcode(&self, id: i64, fallback_host: &str) -> Result<String> {
        let (_, config) = self.client_config(id, fallback_host).await?;
        check_fits_qr(
            &config,
            &[],
            "download it from /config?format=conf instead, or shorten that field",
        )?;
        qr::data_url(&config).map_err(|e| {
            log::error!("QR code: {e}");
            Error::Internal
        })
    }

    async fn client_with_server(&self, id: i64) -> Result<(ServerRow, ClientRow)> {
        self.store
            .run(move |c| {
                let client = write::client_or_404(c, id)?;
                Ok((write::server_or_404(c, client.server_id)?, client))
            })
            .await
    }

    async fn client_view(&self, c: ClientRow) -> ClientView {
        let now = std::time::SystemTime::now();
        let live = live::live_of(&self.engine, &[live::OnDevice::of(&c)], now).await;
        let l = live.into_iter().next().unwrap_or_default();
        ClientView::new(c, l)
    }
}

fn server_change(id: i64, op: Op) -> Change {
    Change::Server { id, op }
}

fn client_change(c: &ClientRow, op: Op) -> Change {
    Change::Client {
        server_id: c.server_id,
        id: c.id,
        op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn new_server(name: &str, v4: Option<&str>, v6: Option<&str>) -> NewServer {
        NewServer {
            name: name.into(),
            ipv4_address: v4.map(Into::into),
            ipv6_address: v6.map(Into::into),
            ..Default::default()
        }
    }

    fn new_client(server_id: i64, name: &str) -> NewClient {
        NewClient {
            server_id,
            name: name.into(),
            ..Default::default()
        }
    }

    fn service(dir: &std::path::Path) -> Service {
        let store = Store::open(&dir.join("db"), &dir.join("logs")).expect("store");
        let engine = Arc::new(Engine::new(None));
        let settings = tokio::sync::watch::Sender::new(crate::system::Settings::from_config(
            &crate::config::Config::default(),
        ));
        let logs = Arc::new(crate::logs::Logs::new(
            store.clone(),
            settings.subscribe(),
            dir.join("exports"),
            String::new(),
        ));
        let reconciler = Arc::new(Reconciler::new(store.clone(), engine.clone(), logs));
        let bus = Bus::default();
        bus.add_applier(reconciler.clone());
        Service::new(store, engine, bus, Pools::default(), reconciler, None)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_get_distinct_addresses() {
        let dir = tempfile::tempdir().expect("tmp");
        let wg = service(dir.path());
        let server = wg
            .create_server(new_server("s", Some("10.0.0.1/24"), Some("fd00::1/64")))
            .await
            .expect("server")
            .view;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let wg = wg.clone();
                tokio::spawn(async move {
                    wg.create_client(new_client(server.id, &format!("c{i}")), "x")
                        .await
                        .map(|c| c.client)
                })
            })
            .collect();
        let (mut v4, mut v6) = (HashSet::new(), HashSet::new());
        for t in tasks {
            let c = t.await.expect("join").expect("created");
            assert!(v4.insert(c.ipv4_address.clone().expect("v4")), "{c:?}");
            assert!(v6.insert(c.ipv6_address.clone().expect("v6")), "{c:?}");
        }
        let want: HashSet<String> = (2..52).map(|i| format!("10.0.0.{i}/32")).collect();
        assert_eq!(v4, want, "the 50 lowest hosts, each once");
        let filter = ClientFilter {
            server_id: Some(server.id),
            ..Default::default()
        };
        let (_, clients) = wg
            .list_clients(filter, Page { page: 1, size: 1 })
            .await
            .expect("list");
        assert_eq!(clients, 50);
        let (rows, total) = wg
            .server_rows(Page { page: 1, size: 20 })
            .await
            .expect("list");
        assert_eq!((rows[0].1, total), (50, 1));
        wg.store.close().await;
    }
}
