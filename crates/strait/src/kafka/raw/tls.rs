//! TLS for the raw client, from librdkafka's `ssl.*` properties, with OpenSSL (vendored, the one
//! librdkafka links) through tokio-openssl: the same trust and the same host name check as the
//! librdkafka clients of the same endpoint.

use std::pin::Pin;

use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ErrorCode, SslConnector, SslFiletype, SslMethod, SslRef, SslVerifyMode};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::{X509VerifyResult, X509};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::kafka::Props;

/// The TLS properties this client applies; any other `ssl.*` property makes an endpoint
/// unsupported (see `super::conn::unsupported`), so that nothing set is silently ignored.
pub(crate) const APPLIED: &[&str] = &[
    "ssl.ca.pem",
    "ssl.ca.location",
    "ssl.certificate.pem",
    "ssl.certificate.location",
    "ssl.key.pem",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    // Windows' certificate stores: librdkafka reads them only on Windows.
    "ssl.ca.certificate.stores",
];

/// Where CA bundles are on common systems, tried in turn when no CA is given: the vendored
/// OpenSSL's compiled-in default directory exists on no system, so librdkafka (statically
/// linked, as in strait) probes the same way.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

/// A TLS client configuration for one endpoint: what to trust, what to present, and whether to
/// check the broker's host name.
pub(crate) struct Tls {
    connector: SslConnector,
    verify_host: bool,
}

impl Tls {
    /// The configuration `props` describe. Errors name the property at fault, never a secret.
    pub(crate) fn from_props(props: &Props) -> Result<Self, String> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ssl("OpenSSL"))?;

        // Trust: the given CAs only, as librdkafka; else the system's.
        let ca_pem = get("ssl.ca.pem");
        let ca_location = get("ssl.ca.location").filter(|l| *l != "probe");
        if ca_pem.is_some() || ca_location.is_some() {
            let mut store = X509StoreBuilder::new().map_err(ssl("OpenSSL"))?;
            if let Some(pem) = ca_pem {
                let certs = X509::stack_from_pem(pem.as_bytes())
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or("ssl.ca.pem holds no PEM certificate")?;
                for c in certs {
                    store.add_cert(c).map_err(ssl("ssl.ca.pem"))?;
                }
            }
            if let Some(loc) = ca_location {
                if std::path::Path::new(loc).is_dir() {
                    store
                        .add_lookup(X509Lookup::hash_dir())
                        .map_err(ssl("OpenSSL"))?
                        .add_dir(loc, SslFiletype::PEM)
                        .map_err(ssl(&format!("ssl.ca.location {loc}")))?;
                } else {
                    let pem = std::fs::read(loc)
                        .map_err(|e| format!("ssl.ca.location: cannot read {loc}: {e}"))?;
                    let certs = X509::stack_from_pem(&pem)
                        .ok()
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| {
                            format!("ssl.ca.location: {loc} holds no PEM certificate")
                        })?;
                    for c in certs {
                        store
                            .add_cert(c)
                            .map_err(ssl(&format!("ssl.ca.location {loc}")))?;
                    }
                }
            }
            b.set_cert_store(store.build());
        } else if let Some(bundle) = SYSTEM_CA_BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
        {
            b.set_ca_file(bundle)
                .map_err(ssl(&format!("the system's CA bundle {bundle}")))?;
        }

        // What to present, if the broker asks.
        if let Some(pem) = get("ssl.certificate.pem") {
            let mut chain = X509::stack_from_pem(pem.as_bytes())
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or("ssl.certificate.pem holds no PEM certificate")?
                .into_iter();
            if let Some(leaf) = chain.next() {
                b.set_certificate(&leaf)
                    .map_err(ssl("ssl.certificate.pem"))?;
            }
            for c in chain {
                b.add_extra_chain_cert(c)
                    .map_err(ssl("ssl.certificate.pem"))?;
            }
        } else if let Some(loc) = get("ssl.certificate.location") {
            b.set_certificate_chain_file(loc)
                .map_err(ssl(&format!("ssl.certificate.location {loc}")))?;
        }
        let password = props.get("ssl.key.password").map(String::as_str);
        let key = if let Some(pem) = get("ssl.key.pem") {
            Some(
                private_key(pem.as_bytes(), password)
                    .map_err(|why| format!("ssl.key.pem: {why}"))?,
            )
        } else if let Some(loc) = get("ssl.key.location") {
            let pem = std::fs::read(loc)
                .map_err(|e| format!("ssl.key.location: cannot read {loc}: {e}"))?;
            Some(
                private_key(&pem, password)
                    .map_err(|why| format!("ssl.key.location {loc}: {why}"))?,
            )
        } else {
            None
        };
        if let Some(key) = key {
            b.set_private_key(&key).map_err(ssl("the private key"))?;
            b.check_private_key().map_err(|_| {
                "the private key (ssl.key.*) does not match the certificate (ssl.certificate.*)"
                    .to_string()
            })?;
        }

        if let Some(list) = get("ssl.cipher.suites") {
            b.set_cipher_list(list)
                .map_err(ssl(&format!("ssl.cipher.suites = {list}")))?;
        }
        if let Some(list) = get("ssl.curves.list") {
            b.set_groups_list(list)
                .map_err(ssl(&format!("ssl.curves.list = {list}")))?;
        }
        if let Some(list) = get("ssl.sigalgs.list") {
            b.set_sigalgs_list(list)
                .map_err(ssl(&format!("ssl.sigalgs.list = {list}")))?;
        }

        match get("enable.ssl.certificate.verification").map(str::to_ascii_lowercase) {
            None => {}
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => {}
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => {
                b.set_verify(SslVerifyMode::NONE)
            }
            Some(v) => {
                return Err(format!(
                    "enable.ssl.certificate.verification = {v} is neither true nor false"
                ))
            }
        }
        let verify_host = match get("ssl.endpoint.identification.algorithm")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("https") => true,
            Some("none") => false,
            Some(v) => {
                return Err(format!(
                    "ssl.endpoint.identification.algorithm = {v} is neither https nor none"
                ))
            }
        };
        Ok(Self {
            connector: b.build(),
            verify_host,
        })
    }

    /// The TLS handshake with `host` over `tcp`. The error is the reason, for an operator: an
    /// untrusted certificate, a host name that does not match, a listener that is not TLS.
    pub(crate) async fn handshake(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<SslStream<TcpStream>, String> {
        let ssl = self
            .connector
            .configure()
            .and_then(|c| c.verify_hostname(self.verify_host).into_ssl(host))
            .map_err(|e| format!("OpenSSL: {}", reasons(&e)))?;
        let mut stream =
            SslStream::new(ssl, tcp).map_err(|e| format!("OpenSSL: {}", reasons(&e)))?;
        let done = Pin::new(&mut stream).connect().await;
        match done {
            Ok(()) => Ok(stream),
            Err(e) => Err(failure(&e, stream.ssl())),
        }
    }
}

fn private_key(pem: &[u8], password: Option<&str>) -> Result<PKey<Private>, String> {
    match password {
        Some(pw) => PKey::private_key_from_pem_passphrase(pem, pw.as_bytes()),
        None => PKey::private_key_from_pem(pem),
    }
    .map_err(|_| match password {
        Some(_) => "not a PEM private key, or ssl.key.password does not open it".to_string(),
        None => "not a PEM private key (an encrypted one needs ssl.key.password)".to_string(),
    })
}

/// Why a handshake failed, in words: the certificate check's verdict when it failed, else
/// OpenSSL's reasons, else what happened to the connection.
fn failure(e: &openssl::ssl::Error, ssl: &SslRef) -> String {
    let verdict = ssl.verify_result();
    if verdict != X509VerifyResult::OK {
        // X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        let hint = if matches!(verdict.as_raw(), 62 | 64) {
            "the broker's certificate is not for this host name (ssl.endpoint.identification.algorithm = none turns the check off)"
        } else {
            "is ssl.ca.location or ssl.ca.pem the CA that signed the broker's certificate?"
        };
        return format!(
            "certificate verify failed: {}; {hint}",
            verdict.error_string()
        );
    }
    if let Some(stack) = e.ssl_error() {
        return reasons(stack);
    }
    if let Some(io) = e.io_error() {
        return io.to_string();
    }
    if matches!(e.code(), ErrorCode::SYSCALL | ErrorCode::ZERO_RETURN) {
        return "the broker closed the connection during the handshake (is this listener TLS? \
                check security.protocol)"
            .into();
    }
    e.to_string()
}

/// A mapper of OpenSSL's errors to a reason about `what`.
fn ssl(what: &str) -> impl Fn(ErrorStack) -> String + '_ {
    move |e| format!("{what}: {}", reasons(&e))
}

/// OpenSSL's reasons, without its source file names.
fn reasons(stack: &ErrorStack) -> String {
    let r: Vec<&str> = stack.errors().iter().filter_map(|e| e.reason()).collect();
    if r.is_empty() {
        stack.to_string()
    } else {
        r.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_settings_name_the_property_and_never_the_key() {
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let Err(e) = Tls::from_props(&props(&[("ssl.key.pem", secret)])) else {
            panic!("a garbage key was accepted")
        };
        assert!(e.starts_with("ssl.key.pem"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let Err(e) = Tls::from_props(&props(&[("ssl.ca.pem", "nothing")])) else {
            panic!("a CA without certificates was accepted")
        };
        assert!(e.contains("ssl.ca.pem"), "{e}");
        let Err(e) = Tls::from_props(&props(&[("ssl.ca.location", "/nonexistent/ca.pem")])) else {
            panic!("a missing CA file was accepted")
        };
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let Err(e) = Tls::from_props(&props(&[("ssl.endpoint.identification.algorithm", "dns")]))
        else {
            panic!("an unknown algorithm was accepted")
        };
        assert!(e.contains("identification"), "{e}");
        assert!(Tls::from_props(&props(&[])).is_ok());
    }
}
