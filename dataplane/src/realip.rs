//! The client's real IP, as Easegress (tomasen/realip) computes it, and `X-Forwarded-For` handling.

use http::{HeaderMap, HeaderValue, header::HeaderName};
use std::net::{IpAddr, SocketAddr};

static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The request's real IP: the peer's address when neither `X-Real-Ip` nor `X-Forwarded-For` is set; else the
/// first public IP in `X-Forwarded-For`; else the `X-Real-Ip` value (possibly empty or not an IP).
pub fn real_ip(headers: &HeaderMap, peer: SocketAddr) -> String {
    real_ip_or(headers, &canonical(peer.ip()).to_string())
}

/// [`real_ip`] with the peer's canonical IP already formatted.
pub(crate) fn real_ip_or(headers: &HeaderMap, peer_ip: &str) -> String {
    let real = first_str(headers, &X_REAL_IP);
    let xff = first_str(headers, &X_FORWARDED_FOR);
    if real.is_empty() && xff.is_empty() {
        return peer_ip.to_string();
    }
    for entry in xff.split(',') {
        let entry = entry.trim();
        if let Ok(ip) = entry.parse::<IpAddr>()
            && !is_private(ip)
        {
            return entry.to_string();
        }
    }
    real.to_string()
}

/// Appends the real IP to `X-Forwarded-For` (Easegress v1 `appendXForwardedFor`): set it when absent, else
/// append `,<ip>` unless the existing value already contains the IP as a substring.
pub fn append_x_forwarded_for(headers: &mut HeaderMap, real_ip: &str) {
    let old = first_str(headers, &X_FORWARDED_FOR);
    let value = if old.is_empty() {
        HeaderValue::from_str(real_ip)
    } else if !old.contains(real_ip) {
        HeaderValue::from_str(&format!("{old},{real_ip}"))
    } else {
        return;
    };
    if let Ok(v) = value {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// First value of a header as text; "" when absent or not UTF-8.
pub(crate) fn first_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .unwrap_or("")
}

/// IPv4-mapped IPv6 addresses as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// tomasen/realip's private ranges: 127/8, 10/8, 172.16/12, 192.168/16, 169.254/16, ::1, fc00::/7, fe80::/10.
fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const PEER: &str = "10.9.8.7:5555";

    #[test]
    fn peer_when_no_headers() {
        assert_eq!(
            real_ip(&HeaderMap::new(), PEER.parse().unwrap()),
            "10.9.8.7"
        );
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:80".parse().unwrap();
        assert_eq!(real_ip(&HeaderMap::new(), mapped), "1.2.3.4");
    }

    #[test]
    fn first_public_forwarded_entry() {
        let h = headers(&[("x-forwarded-for", "10.0.0.1, 192.168.1.1, 8.8.8.8, 9.9.9.9")]);
        assert_eq!(real_ip(&h, PEER.parse().unwrap()), "8.8.8.8");
    }

    #[test]
    fn falls_back_to_x_real_ip() {
        let h = headers(&[
            ("x-forwarded-for", "10.0.0.1, junk"),
            ("x-real-ip", "5.5.5.5"),
        ]);
        assert_eq!(real_ip(&h, PEER.parse().unwrap()), "5.5.5.5");
        let h = headers(&[("x-forwarded-for", "127.0.0.1")]);
        assert_eq!(real_ip(&h, PEER.parse().unwrap()), "");
        let h = headers(&[("x-forwarded-for", "fc00::1, fe80::1, ::1, 2001:db8::1")]);
        assert_eq!(real_ip(&h, PEER.parse().unwrap()), "2001:db8::1");
    }

    #[test]
    fn xff_append_rules() {
        let mut h = HeaderMap::new();
        append_x_forwarded_for(&mut h, "1.2.3.4");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4");
        append_x_forwarded_for(&mut h, "1.2.3.4");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4");
        append_x_forwarded_for(&mut h, "5.6.7.8");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4,5.6.7.8");
    }
}
