//! Reading the key and trust stores a config names, once each however many clients use them,
//! and remembering what they held for `strait check`. The byte-level work is in [`super::stores`];
//! this is the file side: missing files (a warning for `check` away from the deployment),
//! unreadable ones, and expiry warnings.

use std::collections::BTreeMap;

use super::error::{KeyRef, Warning};
use super::load::LocalFiles;
use super::model::{CertSummary, Sourced, StoreSummary};
use super::stores::{self, CertInfo, KeyStore, StoreType, TrustStore};

/// What a client mapping asks of the stores; [`StoreCache`] reads files, tests may not.
pub trait StoreSource {
    /// `Ok(None)`: the file is not on this machine and that is allowed (`strait check`).
    fn truststore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        password: Option<&str>,
    ) -> Result<Option<TrustStore>, String>;

    fn keystore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        store_password: Option<&str>,
        key_password: Option<&str>,
    ) -> Result<Option<KeyStore>, String>;
}

/// Stores and secret files are small; a larger file (or `/dev/zero`) is a mistake, not a store.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Read a whole file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {} MiB, which no store or secret file is",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    Ok(out)
}

/// Certificates expiring within this many days are a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

type CacheKey = (String, &'static str, String, Option<String>, Option<String>);

#[derive(Default)]
pub(crate) struct StoreCache {
    pub(crate) local: LocalFiles,
    trust: BTreeMap<CacheKey, Result<Option<TrustStore>, String>>,
    keys: BTreeMap<CacheKey, Result<Option<KeyStore>, String>>,
    summaries: BTreeMap<(String, &'static str), StoreSummary>,
}

fn type_name(ty: StoreType) -> &'static str {
    match ty {
        StoreType::Jks => "JKS",
        StoreType::Pkcs12 => "PKCS12",
        StoreType::Pem => "PEM",
    }
}

fn summary(c: &CertInfo) -> CertSummary {
    CertSummary {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_after: c.not_after.clone(),
        not_after_unix: c.not_after_unix,
        alias: c.alias.clone(),
    }
}

impl StoreCache {
    pub(crate) fn new(local: LocalFiles) -> Self {
        Self {
            local,
            ..Self::default()
        }
    }

    /// The file's bytes; `Ok(None)` when it is missing and that is allowed.
    fn read(&self, location: &Sourced) -> Result<Option<Vec<u8>>, String> {
        let path = location.value.trim();
        match read_capped(std::path::Path::new(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && self.local == LocalFiles::MayBeMissing =>
            {
                Ok(None)
            }
            Err(e) => Err(match e.kind() {
                std::io::ErrorKind::NotFound => format!("{path}: no such file"),
                std::io::ErrorKind::PermissionDenied => format!("{path}: permission denied"),
                std::io::ErrorKind::IsADirectory => format!("{path}: it is a directory"),
                _ => format!("{path}: {e}"),
            }),
        }
    }

    fn remember(
        &mut self,
        location: &Sourced,
        role: &'static str,
        ty: StoreType,
        certs: Option<&[CertInfo]>,
    ) {
        let path = location.value.trim().to_string();
        self.summaries
            .entry((path.clone(), role))
            .or_insert_with(|| StoreSummary {
                path,
                role,
                store_type: type_name(ty).to_string(),
                at: location.at.clone(),
                read: certs.is_some(),
                certificates: certs.unwrap_or_default().iter().map(summary).collect(),
            });
    }

    pub(crate) fn summaries(&self) -> Vec<StoreSummary> {
        self.summaries.values().cloned().collect()
    }

    /// Stores not on this machine, and certificates expired or expiring soon.
    pub(crate) fn warnings(&self) -> Vec<Warning> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        let missing: Vec<KeyRef> = self
            .summaries
            .values()
            .filter(|s| !s.read)
            .map(|s| s.at.clone())
            .collect();
        if !missing.is_empty() {
            out.push(Warning::about_keys(
                "these key or trust stores are not on this machine, so strait could not check them; \
                 `strait run` reads them where it runs",
                missing,
            ));
        }
        for s in self.summaries.values() {
            for c in &s.certificates {
                let days = (c.not_after_unix - now).div_euclid(86_400);
                let when = if c.not_after_unix <= now {
                    format!("expired on {}", c.not_after)
                } else if days < EXPIRY_WARNING_DAYS {
                    format!("expires on {} (in {days} days)", c.not_after)
                } else {
                    continue;
                };
                out.push(Warning::about_key(
                    format!(
                        "certificate `{}` in {} {} (from {}) {when}",
                        c.subject, s.role, s.path, s.at
                    ),
                    s.at.clone(),
                ));
            }
        }
        out
    }
}

impl StoreSource for StoreCache {
    fn truststore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        password: Option<&str>,
    ) -> Result<Option<TrustStore>, String> {
        let key = (
            location.value.trim().to_string(),
            type_name(ty),
            String::new(),
            password.map(str::to_string),
            None,
        );
        if let Some(hit) = self.trust.get(&key) {
            return hit.clone();
        }
        let result = self.read(location).and_then(|bytes| match bytes {
            None => Ok(None),
            Some(b) => stores::read_truststore(&b, ty, password)
                .map(Some)
                .map_err(|e| format!("{}: {e}", location.value.trim())),
        });
        if let Ok(ts) = &result {
            self.remember(
                location,
                "truststore",
                ty,
                ts.as_ref().map(|t| t.certs.as_slice()),
            );
        }
        self.trust.insert(key, result.clone());
        result
    }

    fn keystore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        store_password: Option<&str>,
        key_password: Option<&str>,
    ) -> Result<Option<KeyStore>, String> {
        let key = (
            location.value.trim().to_string(),
            type_name(ty),
            String::from("k"),
            store_password.map(str::to_string),
            key_password.map(str::to_string),
        );
        if let Some(hit) = self.keys.get(&key) {
            return hit.clone();
        }
        let result = self.read(location).and_then(|bytes| match bytes {
            None => Ok(None),
            Some(b) => stores::read_keystore(&b, ty, store_password, key_password)
                .map(Some)
                .map_err(|e| format!("{}: {e}", location.value.trim())),
        });
        if let Ok(ks) = &result {
            self.remember(
                location,
                "keystore",
                ty,
                ks.as_ref().map(|k| k.chain.as_slice()),
            );
        }
        self.keys.insert(key, result.clone());
        result
    }
}
