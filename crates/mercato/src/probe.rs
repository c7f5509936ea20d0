//! A health probe for an image with no shell and no curl (`mercato probe /readyz`): Docker's
//! HEALTHCHECK and compose's `condition: service_healthy` run it inside the service's container.
//! Kubernetes probes the pod over HTTP itself and does not need it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The address to probe: `explicit`, else where the service serves its operations endpoints:
/// `MERCATO_HTTP__OPERATIONS_LISTEN` when set and not empty, else `MERCATO_HTTP__LISTEN`; a
/// wildcard address (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn target(explicit: Option<SocketAddr>) -> anyhow::Result<SocketAddr> {
    let operations = std::env::var("MERCATO_HTTP__OPERATIONS_LISTEN").ok().filter(|v| !v.trim().is_empty());
    target_from(explicit, operations, std::env::var("MERCATO_HTTP__LISTEN").ok())
}

fn target_from(
    explicit: Option<SocketAddr>,
    operations: Option<String>,
    listen: Option<String>,
) -> anyhow::Result<SocketAddr> {
    let addr = match (explicit, operations) {
        (Some(addr), _) => addr,
        (None, Some(operations)) => operations
            .trim()
            .parse()
            .context("MERCATO_HTTP__OPERATIONS_LISTEN is not an address like 0.0.0.0:9090")?,
        (None, None) => listen
            .context("pass --addr or set MERCATO_HTTP__LISTEN (the service's listen address)")?
            .parse()
            .context("MERCATO_HTTP__LISTEN is not an address like 0.0.0.0:8080")?,
    };
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, addr.port()))
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
    fn the_operations_listener_is_probed_when_the_service_has_one() {
        let listen = Some("0.0.0.0:8080".to_owned());
        let probed = target_from(None, Some("0.0.0.0:9090".to_owned()), listen.clone()).unwrap();
        assert_eq!(probed, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(target_from(None, None, listen).unwrap(), "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let probed = target(Some("0.0.0.0:8080".parse().unwrap())).unwrap();
        assert_eq!(probed, "127.0.0.1:8080".parse().unwrap());
        let probed = target(Some("[::]:8080".parse().unwrap())).unwrap();
        assert_eq!(probed, "[::1]:8080".parse().unwrap());
    }
}
