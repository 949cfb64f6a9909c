//! WireGuard in userspace. The sans-IO parts are pure (text or bytes in, values out) and tested
//! with fixed vectors: keys, the wg-quick configuration format, QR codes, the UAPI text
//! protocol, cryptokey routing. On them stand the I/O parts: TUN interfaces ([`tun`]), the
//! device that drives `boringtun::noise::Tunn` per peer ([`device`]), its UAPI socket for `wg`
//! ([`uapi_socket`]) and interface configuration over netlink ([`netlink`]).

pub mod allowed_ips;
pub mod conf;
pub mod device;
pub mod engine;
pub mod keys;
pub mod netlink;
pub mod peer;
pub mod qr;
pub mod selftest;
pub mod tun;
pub mod uapi;
pub mod uapi_socket;
