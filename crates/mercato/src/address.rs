//! Socket addresses as people write them: `127.0.0.1:8080`, `[::1]:8080` or `localhost:8080`.

use std::net::{SocketAddr, ToSocketAddrs};

/// The shop's address when none is given: where `mercato up` puts its gateway.
pub const SHOP_DEFAULT: &str = "127.0.0.1:8080";
/// Where `mercato up` serves the gateway's `/healthz`, `/readyz` and `/metrics` by default (as
/// the containers do on 9090): off the public port.
pub const OPERATIONS_DEFAULT: &str = "127.0.0.1:9090";

/// An IP address with a port, or a host name with a port (its first IPv4 address, else its
/// first address): `localhost:8080` is `127.0.0.1:8080`.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address like 127.0.0.1:8080 or localhost:8080 ({e})"))?
        .collect();
    resolved
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_and_localhost_with_a_port_are_accepted() {
        assert_eq!(parse("127.0.0.1:8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse("[::1]:8081").unwrap(), "[::1]:8081".parse().unwrap());
        assert_eq!(parse("localhost:8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse(SHOP_DEFAULT).unwrap().port(), 8080);
    }

    #[test]
    fn an_address_without_a_port_is_refused_with_an_example() {
        let err = parse("localhost").unwrap_err();
        assert!(err.contains("like 127.0.0.1:8080 or localhost:8080"), "{err}");
    }
}
