//! Topic-based subscriptions (R4 Subscriptions Backport IG) with rest-hook delivery.
//!
//! A client's write of a `Subscription` is checked (topic, filters, channel, endpoint,
//! what the client's token may read) and keeps a delivery row (`db/subscriptions.rs`).
//! Every write that triggers a topic appends, in its own transaction, one event per
//! matching subscription to the outbox (`subscription_events`, by [`outbox`], which
//! `commit` runs), numbered per subscription: no event for a change that rolled back,
//! none lost when the process stops after the commit. Delivery workers ([`delivery`])
//! claim due subscriptions (a lease, so one worker at a time delivers a subscription,
//! in order), send the notification Bundles with reqwest, and on a failure retry with
//! exponential backoff and jitter; after `max_failures` in a row the subscription is
//! `error`, and the next delivery that succeeds sends every event it missed and makes
//! it `active` again.

pub(crate) mod delivery;
pub(crate) mod outbox;

use std::net::IpAddr;
use std::time::Duration;

use crate::audit::Agent;
use crate::auth::Access;
use crate::auth::scopes::Scopes;
use crate::db::subscriptions::Subscriber;

/// Seconds a notification may take when the Subscription sets no timeout, and at most.
pub(crate) const DEFAULT_TIMEOUT_SECS: u32 = 10;
pub(crate) const MAX_TIMEOUT_SECS: u32 = 60;
/// Events in one notification when the Subscription sets no `max-count`, and at most.
pub(crate) const DEFAULT_MAX_COUNT: u32 = 20;
pub(crate) const MAX_COUNT: u32 = 100;

/// Which endpoints a Subscription may name (no server-side request forgery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `http://` and `https://` to this machine (127.0.0.0/8, ::1, `localhost`).
    pub allow_loopback: bool,
    /// Private, link-local and other non-public ranges.
    pub allow_private: bool,
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Addresses that are not on the public internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

impl EndpointPolicy {
    /// Whether the server may connect to `ip`.
    pub fn allowed_ip(&self, ip: IpAddr) -> bool {
        if is_loopback(ip) {
            return self.allow_loopback;
        }
        !is_private(ip) || self.allow_private
    }

    /// Checks an endpoint URL: `https`, or `http` to loopback when loopback is allowed;
    /// a literal address must be allowed (names are checked when they are resolved).
    pub fn check(&self, endpoint: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(endpoint)
            .map_err(|_| format!("`{endpoint}` is not an absolute URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the endpoint URL may not carry credentials; use a header".into());
        }
        let host = url.host().ok_or("the endpoint URL has no host")?;
        let literal: Option<IpAddr> = match host {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        };
        let local = match (&literal, url.host_str()) {
            (Some(ip), _) => is_loopback(*ip),
            (None, Some(h)) => h.eq_ignore_ascii_case("localhost"),
            _ => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if local && self.allow_loopback => {}
            "http" => {
                return Err("notifications are sent over https only".into());
            }
            other => return Err(format!("`{other}` is not an endpoint scheme (https)")),
        }
        if local && !self.allow_loopback {
            return Err("this server does not call endpoints on its own machine".into());
        }
        if let Some(ip) = literal
            && !self.allowed_ip(ip)
        {
            return Err(format!(
                "{ip} is a private, link-local or reserved address this server does not call"
            ));
        }
        Ok(url)
    }
}

/// How subscriptions are delivered by this process.
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    pub policy: EndpointPolicy,
    /// Failed deliveries in a row before a subscription is `error`.
    pub max_failures: u32,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// Key of the HMAC-SHA256 signature of each notification (none: unsigned).
    pub signing_key: Option<Vec<u8>>,
    /// Worker threads (0: this process delivers nothing).
    pub workers: usize,
    /// The FHIR base URL in notifications (`fullUrl`, the subscription's reference).
    pub base_url: String,
}

/// The access a subscription delivers with: its subscriber's token, as when it wrote it.
pub(crate) fn access_of(tenant: &str, s: &Subscriber) -> Access {
    Access {
        tenant: tenant.to_string(),
        client: s.client.clone(),
        scopes: Scopes::parse(&s.scope),
        patient: s.patient.clone(),
        admin: s.admin,
        address: None,
        user: None,
        grant: s.grant.clone(),
    }
}

/// The subscriber of a client's write (the server's own writes subscribe as a system).
pub(crate) fn subscriber_of(agent: Option<&Agent>) -> Subscriber {
    match agent {
        Some(a) => Subscriber {
            client: a.client.clone(),
            scope: a.scope.clone(),
            patient: a.patient.clone(),
            admin: a.admin,
            grant: a.grant.clone(),
        },
        None => Subscriber {
            client: "server".into(),
            scope: "system/*.rs".into(),
            patient: None,
            admin: false,
            grant: None,
        },
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(key: &[u8], timestamp: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_outside_the_policy_are_refused() {
        let strict = EndpointPolicy::default();
        assert!(strict.check("https://ehr.example.org/hook").is_ok());
        assert!(strict.check("http://ehr.example.org/hook").is_err());
        assert!(strict.check("https://127.0.0.1/hook").is_err());
        assert!(strict.check("https://10.1.2.3/hook").is_err());
        assert!(strict.check("https://169.254.169.254/latest").is_err());
        assert!(strict.check("https://[::1]/hook").is_err());
        assert!(strict.check("https://[fe80::1]/hook").is_err());
        assert!(strict.check("https://[::ffff:192.168.0.1]/hook").is_err());
        assert!(strict.check("https://localhost/hook").is_err());
        assert!(strict.check("https://user:pw@ehr.example.org/").is_err());
        assert!(strict.check("ftp://ehr.example.org/").is_err());
        let local = EndpointPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(local.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check("http://localhost:9000/hook").is_ok());
        assert!(local.check("http://10.0.0.1/hook").is_err());
        let private = EndpointPolicy {
            allow_loopback: false,
            allow_private: true,
        };
        assert!(private.check("https://10.0.0.1/hook").is_ok());
        assert!(private.check("https://127.0.0.1/hook").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        let sig = signature(b"Jefe", "what do ya want", "for nothing?");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(sig, signature(b"Jefe", "what do ya want", "for nothing!"));
    }
}
