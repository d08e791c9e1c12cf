//! Reading the key and trust stores a config names, once each however many clients use them,
//! and remembering what they held for `strait check`. The byte-level work is in [`super::stores`];
//! this is the file side: missing files (a warning for `check` away from the deployment),
//! unreadable ones, and expiry warnings.

use std::collections::BTreeMap;

use super::error::{KeyRef, Warning};
use super::load::LocalFiles;
use super::model::{Sourced, StoreSummary};
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

/// Why a file could not be read, said for an operator.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string(),
    }
}

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

/// Path, type and the passwords: a store is read once per way it is opened.
type CacheKey = (String, &'static str, Option<String>, Option<String>);
type Cache<T> = BTreeMap<CacheKey, Result<Option<T>, String>>;

#[derive(Default)]
pub(crate) struct StoreCache {
    pub(crate) local: LocalFiles,
    trust: Cache<TrustStore>,
    keys: Cache<KeyStore>,
    summaries: BTreeMap<(String, &'static str), StoreSummary>,
}

fn type_name(ty: StoreType) -> &'static str {
    match ty {
        StoreType::Jks => "JKS",
        StoreType::Pkcs12 => "PKCS12",
        StoreType::Pem => "PEM",
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
            Err(e) => Err(format!("{path}: {}", io_reason(&e))),
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
                certificates: certs.unwrap_or_default().to_vec(),
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

impl StoreCache {
    /// Read, parse and remember one store, or answer from `cache` if it was opened the same way.
    #[allow(clippy::too_many_arguments)]
    fn load<T: Clone>(
        &mut self,
        cache: fn(&mut Self) -> &mut Cache<T>,
        role: &'static str,
        location: &Sourced,
        ty: StoreType,
        passwords: (Option<&str>, Option<&str>),
        parse: impl FnOnce(&[u8]) -> Result<T, stores::StoreError>,
        certs: fn(&T) -> &[CertInfo],
    ) -> Result<Option<T>, String> {
        let key = (
            location.value.trim().to_string(),
            type_name(ty),
            passwords.0.map(str::to_string),
            passwords.1.map(str::to_string),
        );
        if let Some(hit) = cache(self).get(&key) {
            return hit.clone();
        }
        let result = self.read(location).and_then(|bytes| match bytes {
            None => Ok(None),
            Some(b) => parse(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", location.value.trim())),
        });
        if let Ok(store) = &result {
            self.remember(location, role, ty, store.as_ref().map(certs));
        }
        cache(self).insert(key, result.clone());
        result
    }
}

impl StoreSource for StoreCache {
    fn truststore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        password: Option<&str>,
    ) -> Result<Option<TrustStore>, String> {
        self.load(
            |c| &mut c.trust,
            "truststore",
            location,
            ty,
            (password, None),
            |b| stores::read_truststore(b, ty, password),
            |t| &t.certs,
        )
    }

    fn keystore(
        &mut self,
        location: &Sourced,
        ty: StoreType,
        store_password: Option<&str>,
        key_password: Option<&str>,
    ) -> Result<Option<KeyStore>, String> {
        self.load(
            |c| &mut c.keys,
            "keystore",
            location,
            ty,
            (store_password, key_password),
            |b| stores::read_keystore(b, ty, store_password, key_password),
            |k| &k.chain,
        )
    }
}
