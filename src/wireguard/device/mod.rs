//! The WireGuard datapath, in userspace; it knows nothing of the database. The sans-IO parts
//! are pure (text or bytes in, values out) and tested with fixed vectors: the UAPI text
//! protocol ([`uapi`]), cryptokey routing ([`allowed_ips`]), a peer's tunnel and timers
//! ([`peer`]). On them stand the I/O parts: TUN interfaces ([`tun`]), the device that drives
//! `boringtun::noise::Tunn` per peer ([`datapath`]), its UAPI socket for `wg`
//! ([`uapi_socket`]), interface configuration over netlink ([`netlink`]) and the [`engine`],
//! which runs one device per started server.

pub mod allowed_ips;
pub mod datapath;
pub mod engine;
pub mod netlink;
pub mod peer;
pub mod selftest;
pub mod tun;
pub mod uapi;
pub mod uapi_socket;
