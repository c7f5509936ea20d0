//! A health probe for an image with no shell and no curl (`mercato probe /readyz`): Docker's
//! HEALTHCHECK and compose's `condition: service_healthy` run it inside the service's container,
//! and beside a shop on its default addresses it needs no argument at all. Kubernetes probes the
//! pod over HTTP itself and does not need it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Where `mercato probe` looks when neither a URL, --addr nor the environment says: where
/// `mercato up` serves its gateway's operations endpoints by default.
pub const DEFAULT_TARGET: &str = crate::address::OPERATIONS_DEFAULT;

/// A service's addresses as its container's environment gives them.
#[derive(Debug, Clone, Default)]
pub struct ServiceAddrs {
    /// `MERCATO_HTTP__OPERATIONS_LISTEN`, when set and not empty: where the operations
    /// endpoints are served instead of the main port.
    pub operations: Option<String>,
    /// `MERCATO_HTTP__LISTEN`: the service's main port.
    pub listen: Option<String>,
}

impl ServiceAddrs {
    pub fn from_env() -> Self {
        let set = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        Self { operations: set("MERCATO_HTTP__OPERATIONS_LISTEN"), listen: set("MERCATO_HTTP__LISTEN") }
    }
}

/// The address and path to probe. `target` is a path (`/readyz`) or a whole URL
/// (`http://localhost:8080/readyz`); a path goes to `addr` (`--addr`), else to the service's
/// operations listener (`MERCATO_HTTP__OPERATIONS_LISTEN`), else to its main port
/// (`MERCATO_HTTP__LISTEN`, what a container sets), else to [`DEFAULT_TARGET`]. A wildcard
/// address (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn target(
    target: &str,
    addr: Option<&str>,
    service: &ServiceAddrs,
) -> anyhow::Result<(SocketAddr, String)> {
    let (addr, path) = if let Some(rest) = target.strip_prefix("http://") {
        anyhow::ensure!(addr.is_none(), "give the address once: in the URL or with --addr, not both");
        let (authority, path) = rest.find('/').map_or((rest, "/"), |slash| rest.split_at(slash));
        let authority =
            if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
        (crate::address::parse(&authority).map_err(anyhow::Error::msg)?, path.to_owned())
    } else {
        anyhow::ensure!(
            target.starts_with('/'),
            "{target:?} is neither a path starting with / nor an http:// URL (the probe speaks plain HTTP)"
        );
        let parse = |value: &str, source: &'static str| {
            crate::address::parse(value).map_err(anyhow::Error::msg).context(source)
        };
        let addr = match (addr, &service.operations, &service.listen) {
            (Some(addr), _, _) => parse(addr, "--addr")?,
            (None, Some(operations), _) => {
                parse(operations, "MERCATO_HTTP__OPERATIONS_LISTEN (the service's operations listener)")?
            }
            (None, None, Some(listen)) => {
                parse(listen, "MERCATO_HTTP__LISTEN (the service's listen address)")?
            }
            (None, None, None) => parse(DEFAULT_TARGET, "the default address")?,
        };
        (addr, target.to_owned())
    };
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok((SocketAddr::new(ip, addr.port()), path))
}

/// `GET path` on `addr` within two seconds; `Ok` only for a 2xx answer.
pub fn probe(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    anyhow::ensure!(path.starts_with('/'), "the path must start with /, not {path:?}");
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: mercato-probe\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // The status line is all we need: `HTTP/1.1 200 OK`.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() && !head[..read].contains(&b'\n') {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status =
        line.split_whitespace().nth(1).and_then(|code| code.parse::<u16>().ok()).with_context(|| {
            format!("{addr} did not answer HTTP: {:?}", line.lines().next().unwrap_or(""))
        })?;
    anyhow::ensure!((200..300).contains(&status), "GET {path} on {addr} answered {status}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-request server answering with `status_line`.
    fn answer_once(status_line: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "the probe closed before its request was complete");
                request.extend_from_slice(&chunk[..n]);
            }
            assert!(request.starts_with(b"GET /readyz HTTP/1.1\r\n"));
            write!(stream, "{status_line}\r\ncontent-length: 0\r\n\r\n").unwrap();
        });
        addr
    }

    #[test]
    fn a_2xx_answer_is_healthy_and_anything_else_is_not() {
        probe(answer_once("HTTP/1.1 200 OK"), "/readyz").unwrap();
        let err = probe(answer_once("HTTP/1.1 503 Service Unavailable"), "/readyz").unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(probe(addr, "/healthz").is_err());
    }

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let (probed, _) = target("/readyz", Some("0.0.0.0:8080"), &ServiceAddrs::default()).unwrap();
        assert_eq!(probed, "127.0.0.1:8080".parse().unwrap());
        let listen = ServiceAddrs { listen: Some("[::]:8080".into()), ..ServiceAddrs::default() };
        let (probed, _) = target("/readyz", None, &listen).unwrap();
        assert_eq!(probed, "[::1]:8080".parse().unwrap());
    }

    #[test]
    fn with_no_address_given_the_shops_default_operations_listener_is_probed() {
        let (probed, path) = target("/readyz", None, &ServiceAddrs::default()).unwrap();
        assert_eq!((probed, path.as_str()), ("127.0.0.1:9090".parse().unwrap(), "/readyz"));
    }

    #[test]
    fn the_operations_listener_is_probed_when_the_service_has_one() {
        let both =
            ServiceAddrs { operations: Some("0.0.0.0:9090".into()), listen: Some("0.0.0.0:8080".into()) };
        assert_eq!(target("/readyz", None, &both).unwrap().0, "127.0.0.1:9090".parse().unwrap());
        let listen_only = ServiceAddrs { operations: None, ..both };
        assert_eq!(target("/readyz", None, &listen_only).unwrap().0, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn an_explicit_address_wins_over_the_services_listen_address() {
        let listen = ServiceAddrs { listen: Some("0.0.0.0:8080".into()), ..ServiceAddrs::default() };
        let (probed, _) = target("/healthz", Some("localhost:9001"), &listen).unwrap();
        assert_eq!(probed, "127.0.0.1:9001".parse().unwrap());
    }

    #[test]
    fn a_url_gives_the_address_and_the_path() {
        let (probed, path) =
            target("http://localhost:8081/api/v1/status?x=1", None, &ServiceAddrs::default()).unwrap();
        assert_eq!((probed, path.as_str()), ("127.0.0.1:8081".parse().unwrap(), "/api/v1/status?x=1"));
        let (_, path) = target("http://127.0.0.1:8081", None, &ServiceAddrs::default()).unwrap();
        assert_eq!(path, "/");
        assert!(
            target("http://127.0.0.1:8081/readyz", Some("127.0.0.1:1"), &ServiceAddrs::default()).is_err()
        );
        assert!(target("https://shop.example/readyz", None, &ServiceAddrs::default()).is_err());
    }
}
