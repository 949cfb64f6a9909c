//! WireGuard: keys, the wg-quick configuration format, QR codes and the UAPI text protocol — the
//! sans-IO parts of the userspace WireGuard servers. Each is pure (text or bytes in, values
//! out) and tested with fixed vectors; the device (TUN, UDP, `boringtun::noise::Tunn`,
//! timers) and the API build on them.

pub mod allowed_ips;
pub mod conf;
pub mod keys;
pub mod qr;
pub mod tun;
pub mod uapi;
