//! A health probe for an image with no shell and no curl (`mercato probe /readyz`): Docker's
//! HEALTHCHECK and compose's `condition: service_healthy` run it inside the service's container,
//! and beside a shop on its default address it needs no argument at all. Kubernetes probes the
//! pod over HTTP itself and does not need it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Where `mercato probe` looks when neither a URL, --addr nor `MERCATO_HTTP__LISTEN` says: the
/// shop's default address, `mercato up`'s gateway. Should the operations endpoints move to a
/// port of their own, this is the line to change.
pub const DEFAULT_TARGET: &str = crate::address::SHOP_DEFAULT;

/// The address and path to probe. `target` is a path (`/readyz`) or a whole URL
/// (`http://localhost:8080/readyz`); a path goes to `addr` (`--addr`), else to the service's
/// `listen` address (`MERCATO_HTTP__LISTEN`, what a container sets), else to
/// [`DEFAULT_TARGET`]. A wildcard address (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn target(
    target: &str,
    addr: Option<&str>,
    listen: Option<&str>,
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
        let addr = match (addr, listen) {
            (Some(addr), _) => crate::address::parse(addr).map_err(anyhow::Error::msg).context("--addr")?,
            (None, Some(listen)) => crate::address::parse(listen)
                .map_err(anyhow::Error::msg)
                .context("MERCATO_HTTP__LISTEN (the service's listen address)")?,
            (None, None) => crate::address::parse(DEFAULT_TARGET).map_err(anyhow::Error::msg)?,
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
        let (probed, _) = target("/readyz", Some("0.0.0.0:8080"), None).unwrap();
        assert_eq!(probed, "127.0.0.1:8080".parse().unwrap());
        let (probed, _) = target("/readyz", None, Some("[::]:8080")).unwrap();
        assert_eq!(probed, "[::1]:8080".parse().unwrap());
    }

    #[test]
    fn with_no_address_given_the_shops_default_is_probed() {
        let (probed, path) = target("/readyz", None, None).unwrap();
        assert_eq!((probed, path.as_str()), ("127.0.0.1:8080".parse().unwrap(), "/readyz"));
    }

    #[test]
    fn an_explicit_address_wins_over_the_services_listen_address() {
        let (probed, _) = target("/healthz", Some("localhost:9001"), Some("0.0.0.0:8080")).unwrap();
        assert_eq!(probed, "127.0.0.1:9001".parse().unwrap());
    }

    #[test]
    fn a_url_gives_the_address_and_the_path() {
        let (probed, path) = target("http://localhost:8081/api/v1/status?x=1", None, None).unwrap();
        assert_eq!((probed, path.as_str()), ("127.0.0.1:8081".parse().unwrap(), "/api/v1/status?x=1"));
        let (_, path) = target("http://127.0.0.1:8081", None, None).unwrap();
        assert_eq!(path, "/");
        assert!(target("http://127.0.0.1:8081/readyz", Some("127.0.0.1:1"), None).is_err());
        assert!(target("https://shop.example/readyz", None, None).is_err());
    }
}
