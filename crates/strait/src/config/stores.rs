//! Java key and trust stores (JKS, PKCS#12, PEM) turned into in-memory PEM.
//!
//! MirrorMaker 2 properties name Java stores (`ssl.truststore.*`, `ssl.keystore.*`,
//! `ssl.key.password`). librdkafka cannot read JKS, so strait opens the store itself
//! and hands librdkafka `ssl.ca.pem`, `ssl.certificate.pem` and `ssl.key.pem`: the
//! private key is never written to disk. This module is the pure part (bytes in,
//! PEM out). Its input is untrusted: malformed bytes give a [`StoreError`], never a
//! panic, and no allocation is sized by a length field the input has not backed.

use std::fmt;

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::pkcs12::{ParsedPkcs12_2, Pkcs12};
use openssl::pkey::{PKey, Private};
use openssl::sha::Sha1;
use openssl::x509::{X509NameRef, X509Ref, X509};

/// The `ssl.*.type` values strait accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// `JKS`: Java's own format (read as PKCS#12 when the bytes are PKCS#12, as Java 9+ does).
    Jks,
    /// `PKCS12` (read as JKS when the bytes are JKS, as Java 9+ does).
    Pkcs12,
    /// `PEM` (KIP-651): certificates, and for a keystore one private key, as text.
    Pem,
}

impl StoreType {
    /// Parses an `ssl.keystore.type` / `ssl.truststore.type` value as Kafka does
    /// (trimmed, case-insensitive).
    pub fn parse(value: &str) -> Result<StoreType, StoreError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            _ => Err(StoreError::UnsupportedType(short(value.trim()))),
        }
    }
}

/// What an operator needs to recognise a certificate (and notice expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Java-style distinguished name, most specific first: `CN=broker, O=Acme`.
    pub subject: String,
    /// The issuer's distinguished name, in the same form as `subject`.
    pub issuer: String,
    /// `2027-11-25T10:00:00Z`
    pub not_after: String,
    /// `not_after` in seconds since the Unix epoch, for comparisons.
    pub not_after_unix: i64,
    /// The store entry's alias, when the store names one.
    pub alias: Option<String>,
}

/// The certificates a truststore trusts, as librdkafka's `ssl.ca.pem`.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// All trusted certificates, concatenated PEM.
    pub certs_pem: String,
    /// The same certificates described, in the same order.
    pub certs: Vec<CertInfo>,
}

/// A private key and its chain, as librdkafka's `ssl.key.pem` / `ssl.certificate.pem`.
#[derive(Clone)]
pub struct KeyStore {
    /// Unencrypted PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: String,
    /// Leaf first.
    pub chain_pem: String,
    /// The chain's certificates described, leaf first.
    pub chain: Vec<CertInfo>,
    /// Alias of the key entry taken (JKS, PKCS#12 `friendlyName`).
    pub alias: Option<String>,
    /// Aliases of further private key entries, which are ignored (JKS only; for
    /// PKCS#12 OpenSSL silently keeps the first key).
    pub skipped_key_aliases: Vec<String>,
}

/// Hand-written so that the private key never reaches a log line.
impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("key_pem", &"<redacted>")
            .field("chain", &self.chain)
            .field("alias", &self.alias)
            .field("skipped_key_aliases", &self.skipped_key_aliases)
            .finish_non_exhaustive()
    }
}

/// Why a store could not be read. The message is the cause only; the caller adds
/// the config key and the file path. No message ever holds a password or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The declared type (given, shortened) is not JKS, PKCS12 or PEM, or the bytes are JCEKS.
    #[error(
        "unsupported store type `{0}` (use JKS, PKCS12 or PEM; convert with \
         `keytool -importkeystore -deststoretype PKCS12`)"
    )]
    UnsupportedType(String),
    /// The bytes are neither a JKS nor a PKCS#12 store.
    #[error("not a JKS or PKCS#12 store")]
    NotAStore,
    /// The file is PEM text but its type says JKS or PKCS12.
    #[error("is a PEM file, not a JKS or PKCS#12 store (set its type to PEM)")]
    PemNotStore,
    /// The file ends in the middle of something (a cut-off copy or upload).
    #[error("truncated (ends at byte {have} of a {need}-byte {what})")]
    Truncated {
        /// The part being read (`header`, `alias`, `certificate`, `PKCS#12 store`, ...).
        what: &'static str,
        /// Bytes left in the file for it.
        have: usize,
        /// Bytes it needs.
        need: usize,
    },
    /// A JKS header version (given) other than 1 or 2.
    #[error("unsupported JKS version {0}")]
    JksVersion(u32),
    /// A JKS entry that is neither a private key (1) nor a trusted certificate (2).
    #[error("unknown JKS entry tag {0}")]
    JksTag(u32),
    /// A JKS certificate of a type (given, shortened) other than X.509.
    #[error("unsupported certificate type `{0}` (only X.509)")]
    CertType(String),
    /// A certificate that does not parse as X.509 DER, or whose expiry cannot be read.
    #[error("holds a certificate that is not valid X.509")]
    BadCertificate,
    /// The store password does not match the store's integrity digest or MAC.
    #[error("wrong password (the store's integrity check failed)")]
    WrongPassword,
    /// A PKCS#12 store whose MAC check fails without a password: the store password is unset.
    #[error("needs a password (its integrity check failed without one)")]
    PasswordNeeded,
    /// The store opened, but the private key does not decrypt with the key password.
    #[error("the key password is wrong")]
    WrongKeyPassword,
    /// A JKS private key with neither `ssl.key.password` nor `ssl.keystore.password` set.
    #[error("no password for the private key; set `ssl.key.password` or `ssl.keystore.password`")]
    NoKeyPassword,
    /// A JKS private key encrypted with something other than Sun's key protector (OID given).
    #[error("the private key is protected with an unsupported algorithm ({0})")]
    KeyProtection(String),
    /// The private key's bytes do not decode once decrypted (or it is not valid PKCS#8).
    #[error("the private key is malformed")]
    BadKey,
    /// The keystore's certificate is not the one for its private key.
    #[error("the private key does not match its certificate")]
    KeyMismatch,
    /// A truststore with no certificate in it.
    #[error("holds no trusted certificate")]
    NoTrustedCert,
    /// A keystore with no private key (perhaps a truststore given as keystore).
    #[error("holds no private key entry")]
    NoPrivateKey,
    /// A keystore whose private key comes without its certificate.
    #[error("the private key has no certificate")]
    NoCertificate,
    /// A PEM keystore's key is encrypted and `ssl.key.password` is not set.
    #[error("the PEM private key is encrypted; set `ssl.key.password`")]
    EncryptedPemKey,
    /// PEM text whose certificates do not parse.
    #[error("malformed PEM")]
    BadPem,
    /// Java 8 (before 8u301) wrote PKCS#12 with RC2-40, which OpenSSL 3 keeps in
    /// its legacy provider; the vendored build has none.
    #[error(
        "uses the legacy cipher {0}, which this build cannot read (re-create the store \
         with `keytool -importkeystore -deststoretype PKCS12` on Java 11.0.12 or later)"
    )]
    LegacyCipher(String),
    /// Any other PKCS#12 failure, with OpenSSL's reason (shortened) or strait's own limit.
    #[error("unreadable PKCS#12 store ({0})")]
    Pkcs12(String),
}

/// Reads a truststore. Like Java's trust managers, trusts every certificate entry
/// and the end-entity certificate of every key entry. Without a password a JKS
/// store's integrity check is skipped, as Java does.
pub fn read_truststore(
    bytes: &[u8],
    ty: StoreType,
    password: Option<&str>,
) -> Result<TrustStore, StoreError> {
    let certs: Vec<(X509, Option<String>)> = match ty {
        StoreType::Pem => pem_certs(bytes)?.into_iter().map(|c| (c, None)).collect(),
        StoreType::Jks | StoreType::Pkcs12 => match detect(bytes)? {
            Format::Jks => parse_jks(bytes, password)?
                .into_iter()
                .filter_map(|e| match e.kind {
                    JksKind::Cert(c) => Some((c, Some(e.alias))),
                    JksKind::Key { chain, .. } => {
                        chain.into_iter().next().map(|c| (c, Some(e.alias)))
                    }
                })
                .collect(),
            Format::Pkcs12 => {
                let p = parse_pkcs12(bytes, password)?;
                p.cert
                    .into_iter()
                    .chain(p.ca.into_iter().flatten())
                    .map(|c| {
                        let alias = p12_alias(&c);
                        (c, alias)
                    })
                    .collect()
            }
        },
    };
    if certs.is_empty() {
        return Err(StoreError::NoTrustedCert);
    }
    let mut certs_pem = String::new();
    let mut infos = Vec::with_capacity(certs.len());
    for (cert, alias) in certs {
        certs_pem.push_str(&to_pem(&cert)?);
        infos.push(cert_info(&cert, alias)?);
    }
    Ok(TrustStore {
        certs_pem,
        certs: infos,
    })
}

/// Reads a keystore: the first private key entry and its chain. As in Kafka the key
/// password is `key_password` if given, else the store password; for PEM only the
/// key password is used (Kafka rejects a store password with PEM).
pub fn read_keystore(
    bytes: &[u8],
    ty: StoreType,
    store_password: Option<&str>,
    key_password: Option<&str>,
) -> Result<KeyStore, StoreError> {
    let (key, leaf, others, alias, skipped_key_aliases) = match ty {
        StoreType::Pem => {
            let (key, leaf, others) = pem_key_and_certs(bytes, key_password)?;
            (key, leaf, others, None, Vec::new())
        }
        StoreType::Jks | StoreType::Pkcs12 => match detect(bytes)? {
            Format::Jks => {
                let mut keys =
                    parse_jks(bytes, store_password)?
                        .into_iter()
                        .filter_map(|e| match e.kind {
                            JksKind::Key { protected, chain } => Some((e.alias, protected, chain)),
                            JksKind::Cert(_) => None,
                        });
                let (alias, protected, chain) = keys.next().ok_or(StoreError::NoPrivateKey)?;
                let skipped = keys.map(|(a, _, _)| a).collect();
                let password = key_password
                    .or(store_password)
                    .ok_or(StoreError::NoKeyPassword)?;
                let key = jks_recover_key(&protected, password)?;
                let mut chain = chain.into_iter();
                let leaf = chain.next().ok_or(StoreError::NoCertificate)?;
                (key, leaf, chain.collect(), Some(alias), skipped)
            }
            Format::Pkcs12 => {
                // keytool writes one password for store and key (it ignores -keypass).
                let p = parse_pkcs12(bytes, store_password.or(key_password))?;
                let key = p.pkey.ok_or(StoreError::NoPrivateKey)?;
                let leaf = p.cert.ok_or(StoreError::NoCertificate)?;
                let chain = chain_from_pool(&leaf, p.ca.into_iter().flatten().collect());
                let alias = p12_alias(&leaf);
                (key, leaf, chain, alias, Vec::new())
            }
        },
    };
    let matches = leaf
        .public_key()
        .map(|pk| pk.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(StoreError::KeyMismatch);
    }
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or(StoreError::BadKey)?;
    let mut chain_pem = to_pem(&leaf)?;
    let mut chain = vec![cert_info(&leaf, alias.clone())?];
    for cert in &others {
        chain_pem.push_str(&to_pem(cert)?);
        chain.push(cert_info(cert, None)?);
    }
    Ok(KeyStore {
        key_pem,
        chain_pem,
        chain,
        alias,
        skipped_key_aliases,
    })
}

/// Java 9+ loads either format whatever the declared type (keystore.type.compat),
/// so the bytes decide.
enum Format {
    Jks,
    Pkcs12,
}

fn detect(bytes: &[u8]) -> Result<Format, StoreError> {
    match bytes {
        [0xFE, 0xED, 0xFE, 0xED, ..] => Ok(Format::Jks),
        [0xCE, 0xCE, 0xCE, 0xCE, ..] => Err(StoreError::UnsupportedType("JCEKS".into())),
        [0x30, ..] => Ok(Format::Pkcs12),
        _ if contains(bytes, b"-----BEGIN ") => Err(StoreError::PemNotStore),
        _ => Err(StoreError::NotAStore),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Error messages show input-derived text (types, aliases) only this long.
fn short(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------- JKS

struct JksEntry {
    alias: String,
    kind: JksKind,
}

enum JksKind {
    Key {
        protected: Vec<u8>,
        chain: Vec<X509>,
    },
    Cert(X509),
}

/// Bounds-checked big-endian reader: every length is checked against what is left
/// before anything is sliced or allocated.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, need: usize, what: &'static str) -> Result<&'a [u8], StoreError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let have = rest.len();
        let out = rest
            .get(..need)
            .ok_or(StoreError::Truncated { what, have, need })?;
        self.pos += need;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Java `DataInput.readUTF` (modified UTF-8, read leniently).
    fn utf(&mut self, what: &'static str) -> Result<String, StoreError> {
        let len = u16::from_be_bytes(self.array(what)?);
        Ok(String::from_utf8_lossy(self.take(usize::from(len), what)?).into_owned())
    }

    /// A u32-length-prefixed byte string.
    fn blob(&mut self, what: &'static str) -> Result<&'a [u8], StoreError> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len, what)
    }

    fn cert(&mut self, version: u32) -> Result<X509, StoreError> {
        if version == 2 {
            let ty = self.utf("certificate type")?;
            if ty != "X.509" {
                return Err(StoreError::CertType(short(&ty)));
            }
        }
        X509::from_der(self.blob("certificate")?).map_err(|_| StoreError::BadCertificate)
    }
}

/// Parses `sun.security.provider.JavaKeyStore`'s format and, given a password,
/// checks its SHA-1 integrity digest.
fn parse_jks(bytes: &[u8], password: Option<&str>) -> Result<Vec<JksEntry>, StoreError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    c.take(4, "header")?; // magic, checked by `detect`
    let version = c.u32("header")?;
    if version != 1 && version != 2 {
        return Err(StoreError::JksVersion(version));
    }
    let count = c.u32("header")?;
    let mut entries = Vec::new();
    // Each entry consumes input, so a bogus count fails fast as `Truncated`.
    for _ in 0..count {
        let tag = c.u32("entry")?;
        if tag != 1 && tag != 2 {
            return Err(StoreError::JksTag(tag));
        }
        let alias = c.utf("alias")?;
        c.take(8, "entry")?; // creation date
        let kind = if tag == 1 {
            let protected = c.blob("private key")?.to_vec();
            let n = c.u32("certificate chain")?;
            let mut chain = Vec::new();
            for _ in 0..n {
                chain.push(c.cert(version)?);
            }
            JksKind::Key { protected, chain }
        } else {
            JksKind::Cert(c.cert(version)?)
        };
        entries.push(JksEntry { alias, kind });
    }
    if let Some(password) = password {
        let body = bytes.get(..c.pos).unwrap_or_default();
        let stored = c.take(20, "integrity digest")?;
        let mut h = Sha1::new();
        h.update(&utf16be(password));
        h.update(b"Mighty Aphrodite");
        h.update(body);
        if !openssl::memcmp::eq(&h.finish(), stored) {
            return Err(StoreError::WrongPassword);
        }
    }
    Ok(entries)
}

/// A Java `char[]` password as the JKS digests see it.
fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Sun's proprietary "JKS key protector".
const JKS_KEY_PROTECTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.42.2.17.1.1");

/// Undoes `sun.security.provider.KeyProtector`: a SHA-1 keystream XORed over the
/// PKCS#8 key, with a SHA-1 check value that tells a wrong key password.
fn jks_recover_key(protected: &[u8], password: &str) -> Result<PKey<Private>, StoreError> {
    let (oid, data) = encrypted_private_key_info(protected).map_err(|_| StoreError::BadKey)?;
    if oid != JKS_KEY_PROTECTOR {
        return Err(StoreError::KeyProtection(short(&oid.to_string())));
    }
    let (salt, rest) = data.split_at_checked(20).ok_or(StoreError::BadKey)?;
    let split = rest.len().checked_sub(20).ok_or(StoreError::BadKey)?;
    let (encrypted, check) = rest.split_at(split);
    let pw = utf16be(password);
    let mut digest = [0u8; 20];
    digest.copy_from_slice(salt);
    let mut plain = Vec::with_capacity(encrypted.len());
    for block in encrypted.chunks(20) {
        let mut h = Sha1::new();
        h.update(&pw);
        h.update(&digest);
        digest = h.finish();
        plain.extend(block.iter().zip(digest).map(|(c, k)| c ^ k));
    }
    let mut h = Sha1::new();
    h.update(&pw);
    h.update(&plain);
    if !openssl::memcmp::eq(&h.finish(), check) {
        return Err(StoreError::WrongKeyPassword);
    }
    PKey::private_key_from_pkcs8(&plain).map_err(|_| StoreError::BadKey)
}

/// `EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }`.
fn encrypted_private_key_info(der: &[u8]) -> der::Result<(ObjectIdentifier, &[u8])> {
    let mut r = SliceReader::new(der)?;
    let out = r.sequence(|r| {
        let oid = r.sequence(|r| {
            let oid = ObjectIdentifier::decode(r)?;
            Option::<AnyRef<'_>>::decode(r)?;
            Ok::<_, der::Error>(oid)
        })?;
        let data = <&OctetStringRef>::decode(r)?;
        Ok::<_, der::Error>((oid, data.as_bytes()))
    })?;
    r.finish()?;
    Ok(out)
}

// ---------------------------------------------------------------- PKCS#12

/// Java caps PKCS#12 iteration counts at 5,000,000; a larger MAC count in hostile
/// input would only make OpenSSL spin.
const MAX_MAC_ITERATIONS: u64 = 5_000_000;

fn parse_pkcs12(bytes: &[u8], password: Option<&str>) -> Result<ParsedPkcs12_2, StoreError> {
    check_pfx_header(bytes)?;
    let p12 = Pkcs12::from_der(bytes).map_err(|_| StoreError::NotAStore)?;
    let pass = password.unwrap_or("");
    if pass.contains('\0') {
        // OpenSSL takes a C string (and the openssl crate would panic).
        return Err(StoreError::Pkcs12(
            "the password contains a NUL character".into(),
        ));
    }
    p12.parse2(pass)
        .map_err(|e| pkcs12_error(&e, password.is_some()))
}

/// Outer `PFX ::= SEQUENCE { version, authSafe, macData MacData OPTIONAL }`: reports
/// truncation plainly and caps the MAC iteration count before OpenSSL sees it.
/// Advisory only: whatever `der` cannot read (e.g. BER) is left for OpenSSL to judge.
fn check_pfx_header(bytes: &[u8]) -> Result<(), StoreError> {
    let header = SliceReader::new(bytes).and_then(|mut r| {
        let h = der::Header::decode(&mut r)?;
        Ok((usize::try_from(h.length())?, usize::try_from(r.position())?))
    });
    if let Ok((need, header_len)) = header {
        let have = bytes.len().saturating_sub(header_len);
        if need > have {
            let what = "PKCS#12 store";
            return Err(StoreError::Truncated { what, have, need });
        }
    }
    let iterations = SliceReader::new(bytes).and_then(|mut r| {
        r.sequence(|r| {
            r.decode::<u8>()?; // version
            AnyRef::decode(r)?; // authSafe
            let Some(mac) = Option::<&der::asn1::SequenceRef>::decode(r)? else {
                return Ok(1);
            };
            let mut m = SliceReader::new(mac.as_bytes())?;
            AnyRef::decode(&mut m)?; // DigestInfo
            <&OctetStringRef>::decode(&mut m)?; // salt
            Ok::<_, der::Error>(Option::<u64>::decode(&mut m)?.unwrap_or(1))
        })
    });
    match iterations {
        Ok(n) if n > MAX_MAC_ITERATIONS => Err(StoreError::Pkcs12(format!(
            "MAC iteration count {n} exceeds {MAX_MAC_ITERATIONS}"
        ))),
        _ => Ok(()),
    }
}

fn pkcs12_error(e: &ErrorStack, had_password: bool) -> StoreError {
    let reasons: Vec<&str> = e.errors().iter().filter_map(|e| e.reason()).collect();
    if reasons.iter().any(|r| r.contains("mac verify failure")) {
        if had_password {
            StoreError::WrongPassword
        } else {
            StoreError::PasswordNeeded
        }
    } else if let Some(legacy) = legacy_cipher(e) {
        legacy
    } else {
        StoreError::Pkcs12(short(reasons.first().copied().unwrap_or("malformed")))
    }
}

/// OpenSSL's "unsupported" fetch error, naming the algorithm it lacks.
fn legacy_cipher(e: &ErrorStack) -> Option<StoreError> {
    let e = e
        .errors()
        .iter()
        .find(|e| e.reason() == Some("unsupported"))?;
    let data = e.data().unwrap_or_default();
    let algorithm = data
        .split("Algorithm (")
        .nth(1)
        .and_then(|a| a.split(' ').next());
    Some(StoreError::LegacyCipher(short(algorithm.unwrap_or("?"))))
}

fn p12_alias(cert: &X509Ref) -> Option<String> {
    cert.alias()
        .map(|a| String::from_utf8_lossy(a).into_owned())
}

/// Orders a key's chain by following issuer names from the leaf, as Java's
/// PKCS12KeyStore does; certificates off the path (other trusted entries) drop out.
fn chain_from_pool(leaf: &X509Ref, mut pool: Vec<X509>) -> Vec<X509> {
    let mut chain: Vec<X509> = Vec::new();
    loop {
        let last = chain.last().map_or(leaf, |c| c.as_ref());
        if same_name(last.issuer_name(), last.subject_name()) {
            return chain;
        }
        match pool
            .iter()
            .position(|c| same_name(c.subject_name(), last.issuer_name()))
        {
            Some(i) => chain.push(pool.swap_remove(i)),
            None => return chain,
        }
    }
}

fn same_name(a: &X509NameRef, b: &X509NameRef) -> bool {
    a.try_cmp(b).is_ok_and(|o| o.is_eq())
}

// ---------------------------------------------------------------- PEM

fn pem_certs(bytes: &[u8]) -> Result<Vec<X509>, StoreError> {
    X509::stack_from_pem(bytes).map_err(|_| StoreError::BadPem)
}

/// A KIP-651 PEM keystore: one private key (PKCS#8, maybe encrypted) plus its chain.
fn pem_key_and_certs(
    bytes: &[u8],
    key_password: Option<&str>,
) -> Result<(PKey<Private>, X509, Vec<X509>), StoreError> {
    if !contains(bytes, b"PRIVATE KEY-----") {
        return Err(StoreError::NoPrivateKey);
    }
    let encrypted = contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(bytes, b"Proc-Type: 4,ENCRYPTED");
    // Always pass a passphrase: OpenSSL's default would prompt on the terminal.
    let pass = match (encrypted, key_password) {
        (true, None) => return Err(StoreError::EncryptedPemKey),
        (_, pass) => pass.unwrap_or(""),
    };
    let key = PKey::private_key_from_pem_passphrase(bytes, pass.as_bytes()).map_err(|e| {
        match legacy_cipher(&e) {
            Some(legacy) => legacy,
            None if encrypted => StoreError::WrongKeyPassword,
            None => StoreError::BadKey,
        }
    })?;
    let mut certs = pem_certs(bytes)?;
    // Kafka wants the leaf first; accept any order by finding the key's certificate.
    let i = certs
        .iter()
        .position(|c| c.public_key().is_ok_and(|pk| pk.public_eq(&key)))
        .ok_or(if certs.is_empty() {
            StoreError::NoCertificate
        } else {
            StoreError::KeyMismatch
        })?;
    let leaf = certs.swap_remove(i);
    let chain = chain_from_pool(&leaf, certs);
    Ok((key, leaf, chain))
}

// ---------------------------------------------------------------- output

fn to_pem(cert: &X509Ref) -> Result<String, StoreError> {
    cert.to_pem()
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or(StoreError::BadCertificate)
}

fn cert_info(cert: &X509Ref, alias: Option<String>) -> Result<CertInfo, StoreError> {
    let not_after_unix = unix_time(cert.not_after()).ok_or(StoreError::BadCertificate)?;
    Ok(CertInfo {
        subject: java_dn(cert.subject_name()),
        issuer: java_dn(cert.issuer_name()),
        not_after: iso8601(not_after_unix),
        not_after_unix,
        alias,
    })
}

/// `CN=broker, O=Acme`: like Java's `X500Principal.toString()`, most specific first.
fn java_dn(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map_or_else(|_| e.object().to_string(), str::to_owned);
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}

fn unix_time(t: &Asn1TimeRef) -> Option<i64> {
    let diff = Asn1Time::from_unix(0).ok()?.diff(t).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
fn iso8601(unix: i64) -> String {
    let (year, month, day, ms) = crate::text::utc_parts(unix.saturating_mul(1000));
    let secs = ms / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::StoreError as E;
    use super::StoreType::{Jks, Pem, Pkcs12};
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    /// Store and key passwords of the fixtures (other modules' tests use them too).
    pub(crate) const SP: &str = "storepass1";
    pub(crate) const KP: &str = "keypass22";
    const WRONG: &str = "Wr0ngPass!";

    /// Stores made once by the real tools, as `(file name, bytes)`.
    struct Fx(Vec<(String, Vec<u8>)>);

    impl Fx {
        fn get(&self, name: &str) -> &[u8] {
            &self.0.iter().find(|(n, _)| n == name).unwrap().1
        }
    }

    /// Commands within a phase run side by side (keytool takes ~1 s to start).
    /// Arguments are split on spaces, so none holds one.
    const PHASES: &[&[&str]] = &[
        &[
            "keytool -genkeypair -alias ca -keyalg EC -groupname secp256r1 -ext bc:c \
             -validity 3650 -keystore ca.p12 -storepass storepass1 -dname CN=Test_CA,O=Acme",
            "keytool -genkeypair -alias client -keyalg RSA -keysize 2048 -validity 365 \
             -keystore client.jks -storetype JKS -storepass storepass1 -keypass keypass22 \
             -dname CN=client,OU=Ops,O=Acme",
        ],
        &[
            "keytool -exportcert -rfc -alias ca -keystore ca.p12 -storepass storepass1 \
             -file ca.pem",
            "keytool -certreq -alias client -keystore client.jks -storepass storepass1 \
             -keypass keypass22 -file client.csr",
        ],
        &[
            "keytool -gencert -alias ca -keystore ca.p12 -storepass storepass1 \
             -infile client.csr -outfile client.pem -rfc -validity 365",
        ],
        &[
            "keytool -importcert -noprompt -alias ca -file ca.pem -storepass storepass1 \
             -keystore client.jks",
            "keytool -importcert -noprompt -alias ca -file ca.pem -storepass storepass1 \
             -keystore trust.jks -storetype JKS",
            "keytool -importcert -noprompt -alias ca -file ca.pem -storepass storepass1 \
             -keystore trust.p12 -storetype PKCS12",
            "keytool -importcert -noprompt -alias ca -file ca.pem -storepass storepass1 \
             -keystore trust.jceks -storetype JCEKS",
        ],
        &[
            "keytool -importcert -noprompt -alias client -file client.pem -keystore client.jks \
             -storepass storepass1 -keypass keypass22",
        ],
        &[
            "cp client.jks two.jks",
            "cp trust.jks empty.jks",
            "cp trust.p12 empty.p12",
        ],
        &[
            "keytool -importkeystore -srckeystore client.jks -srcstorepass storepass1 \
             -srcalias client -srckeypass keypass22 -destkeystore client.p12 \
             -deststoretype PKCS12 -deststorepass storepass1",
            // What Java 8 (before 8u301) wrote: RC2-40 certificate bags.
            "keytool -J-Dkeystore.pkcs12.certProtectionAlgorithm=PBEWithSHA1AndRC2_40 \
             -importkeystore -srckeystore client.jks -srcstorepass storepass1 \
             -srcalias client -srckeypass keypass22 -destkeystore legacy.p12 \
             -deststoretype PKCS12 -deststorepass storepass1",
            "keytool -genkeypair -alias second -keyalg EC -keystore two.jks \
             -storepass storepass1 -keypass keypass22 -dname CN=second",
            "keytool -delete -alias ca -storepass storepass1 -keystore empty.jks",
            "keytool -delete -alias ca -storepass storepass1 -keystore empty.p12",
        ],
        &[
            "openssl pkcs12 -in client.p12 -passin pass:storepass1 -nocerts -nodes -out key.pem",
            "openssl pkcs12 -in client.p12 -passin pass:storepass1 -nokeys -out certs.pem",
        ],
        &[
            "openssl pkcs8 -topk8 -in key.pem -v2 aes-256-cbc -passout pass:keypass22 \
             -out key_enc.pem",
        ],
    ];

    fn run(dir: &Path, command: &str) {
        let mut args = command.split_whitespace();
        let prog = args.next().unwrap();
        let mut cmd = Command::new(prog);
        if prog == "keytool" {
            cmd.args(["-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1"]);
        }
        let out = cmd
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output();
        let out = out.unwrap_or_else(|e| panic!("{prog}: {e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {err}");
    }

    fn fx() -> &'static Fx {
        static FX: OnceLock<Fx> = OnceLock::new();
        FX.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            for phase in PHASES {
                std::thread::scope(|s| {
                    for command in *phase {
                        s.spawn(move || run(d, command));
                    }
                });
            }
            let files = std::fs::read_dir(d).unwrap().map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            });
            Fx(files.collect())
        })
    }

    fn g(name: &str) -> &'static [u8] {
        fx().get(name)
    }

    /// A fixture written to `dir` under its own name, for tests that read stores from files.
    pub(crate) fn write_fixture(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, g(name)).unwrap();
        path
    }

    fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
        let certs = X509::stack_from_pem(pem).unwrap();
        certs.iter().map(|c| c.to_der().unwrap()).collect()
    }

    fn key_der(pem: &[u8]) -> Vec<u8> {
        let key = PKey::private_key_from_pem_passphrase(pem, b"").unwrap();
        key.private_key_to_der().unwrap()
    }

    fn now() -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        i64::try_from(d.unwrap().as_secs()).unwrap()
    }

    #[test]
    fn store_type_parse() {
        assert_eq!(StoreType::parse(" jks "), Ok(Jks));
        assert_eq!(StoreType::parse("Pkcs12"), Ok(Pkcs12));
        assert_eq!(StoreType::parse("pem"), Ok(Pem));
        let e = StoreType::parse("JCEKS").unwrap_err();
        assert_eq!(e, E::UnsupportedType("JCEKS".into()));
        assert!(e
            .to_string()
            .contains("`keytool -importkeystore -deststoretype PKCS12`"));
        assert!(StoreType::parse("BCFKS").is_err());
    }

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso8601(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(iso8601(1_827_136_800), "2027-11-25T10:00:00Z");
    }

    #[test]
    fn truststores_match_keytool_export() {
        let cases = [
            ("trust.jks", Jks, Some(SP)),
            ("trust.jks", Jks, None), // Java skips the integrity check
            ("trust.jks", Pkcs12, Some(SP)),
            ("trust.p12", Pkcs12, Some(SP)),
            ("trust.p12", Jks, Some(SP)), // keystore.type.compat
            ("ca.pem", Pem, None),
        ];
        for (file, ty, pw) in cases {
            let ts = read_truststore(g(file), ty, pw).unwrap();
            assert_eq!(ders(ts.certs_pem.as_bytes()), ders(g("ca.pem")), "{file}");
            let info = &ts.certs[0];
            assert_eq!(info.subject, "CN=Test_CA, O=Acme");
            assert_eq!(info.issuer, info.subject);
            assert_eq!(info.alias.as_deref(), (ty != Pem).then_some("ca"));
            let ten_years = now() + 3650 * 86_400;
            assert!((info.not_after_unix - ten_years).abs() < 2 * 86_400);
            assert_eq!(info.not_after, iso8601(info.not_after_unix));
        }
        // Java trusts key entries' leaf certificates too.
        let ts = read_truststore(g("client.jks"), Jks, Some(SP)).unwrap();
        let mut got = ders(ts.certs_pem.as_bytes());
        got.sort();
        let mut want = ders(&[g("client.pem"), g("ca.pem")].concat());
        want.sort();
        assert_eq!(got, want);
    }

    fn check_client(ks: &KeyStore) {
        assert!(ks.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(key_der(ks.key_pem.as_bytes()), key_der(g("key.pem")));
        let want = ders(&[g("client.pem"), g("ca.pem")].concat());
        assert_eq!(ders(ks.chain_pem.as_bytes()), want);
        assert_eq!(ks.chain.len(), 2);
        assert_eq!(ks.chain[0].subject, "CN=client, OU=Ops, O=Acme");
        assert_eq!(ks.chain[0].issuer, "CN=Test_CA, O=Acme");
        let year = now() + 365 * 86_400;
        assert!((ks.chain[0].not_after_unix - year).abs() < 2 * 86_400);
    }

    #[test]
    fn keystores_match_openssl_export() {
        let ks = read_keystore(g("client.jks"), Jks, Some(SP), Some(KP)).unwrap();
        check_client(&ks);
        assert_eq!(ks.alias.as_deref(), Some("client"));
        assert_eq!(ks.chain[0].alias.as_deref(), Some("client"));
        assert!(ks.skipped_key_aliases.is_empty());
        // Without a store password the integrity check is skipped, as in Java.
        check_client(&read_keystore(g("client.jks"), Pkcs12, None, Some(KP)).unwrap());
        // keytool's PKCS#12 export, as `openssl pkcs12 -nokeys` sees it.
        let want = ders(&[g("client.pem"), g("ca.pem")].concat());
        assert_eq!(ders(g("certs.pem")), want);
        for (ty, key_pw) in [(Pkcs12, None), (Pkcs12, Some(SP)), (Jks, None)] {
            let ks = read_keystore(g("client.p12"), ty, Some(SP), key_pw).unwrap();
            check_client(&ks);
            assert_eq!(ks.alias.as_deref(), Some("client"));
        }
    }

    #[test]
    fn pem_keystore() {
        let (key, enc, leaf, ca) = (g("key.pem"), g("key_enc.pem"), g("client.pem"), g("ca.pem"));
        let read = |b: &[u8], kp| read_keystore(b, Pem, None, kp);
        check_client(&read(&[key, leaf, ca].concat(), None).unwrap());
        // Order in the file does not matter; the key's certificate leads.
        check_client(&read(&[ca, key, leaf].concat(), None).unwrap());
        check_client(&read(&[enc, leaf, ca].concat(), Some(KP)).unwrap());
        let err = |b: &[u8], kp| read(b, kp).unwrap_err();
        assert_eq!(err(&[enc, leaf].concat(), None), E::EncryptedPemKey);
        assert_eq!(err(&[enc, leaf].concat(), Some(WRONG)), E::WrongKeyPassword);
        assert_eq!(err(ca, None), E::NoPrivateKey);
        assert_eq!(err(key, None), E::NoCertificate);
        assert_eq!(err(&[key, ca].concat(), None), E::KeyMismatch);
    }

    #[test]
    fn wrong_or_missing_passwords() {
        let ts = |f, pw| read_truststore(g(f), Jks, pw).unwrap_err();
        let ks = |f, sp, kp| read_keystore(g(f), Jks, sp, kp).unwrap_err();
        assert_eq!(ts("trust.jks", Some(WRONG)), E::WrongPassword);
        assert_eq!(ts("trust.p12", Some(WRONG)), E::WrongPassword);
        assert_eq!(ts("trust.p12", None), E::PasswordNeeded);
        assert_eq!(ks("client.jks", Some(WRONG), Some(KP)), E::WrongPassword);
        assert_eq!(ks("client.jks", Some(SP), Some(WRONG)), E::WrongKeyPassword);
        // The store password stands in for the key password, and is not it here.
        assert_eq!(ks("client.jks", Some(SP), None), E::WrongKeyPassword);
        assert_eq!(ks("client.jks", None, None), E::NoKeyPassword);
        assert_eq!(ks("client.p12", Some(WRONG), None), E::WrongPassword);
        let nul = ks("client.p12", Some("a\0b"), None);
        assert!(nul.to_string().contains("NUL"), "{nul}");
    }

    #[test]
    fn stores_without_the_expected_entry() {
        for f in ["empty.jks", "empty.p12"] {
            let e = read_truststore(g(f), Pkcs12, Some(SP));
            assert_eq!(e.unwrap_err(), E::NoTrustedCert);
        }
        let e = read_truststore(b"no certificates here", Pem, None);
        assert_eq!(e.unwrap_err(), E::NoTrustedCert);
        for f in ["trust.jks", "trust.p12", "empty.jks"] {
            let e = read_keystore(g(f), Jks, Some(SP), None);
            assert_eq!(e.unwrap_err(), E::NoPrivateKey);
        }
    }

    #[test]
    fn unsupported_and_foreign_formats() {
        let e = read_truststore(g("trust.jceks"), Jks, Some(SP)).unwrap_err();
        assert_eq!(e, E::UnsupportedType("JCEKS".into()));
        let e = read_keystore(g("ca.pem"), Jks, Some(SP), None);
        assert_eq!(e.unwrap_err(), E::PemNotStore);
        let e = read_truststore(b"hello world", Pkcs12, None);
        assert_eq!(e.unwrap_err(), E::NotAStore);
        let e = read_keystore(g("legacy.p12"), Pkcs12, Some(SP), None);
        assert_eq!(e.unwrap_err(), E::LegacyCipher("RC2-40-CBC".into()));
    }

    #[test]
    fn several_key_entries_take_the_first() {
        let ks = read_keystore(g("two.jks"), Jks, Some(SP), Some(KP)).unwrap();
        // JKS writes entries in hash order, so either may come first.
        let first = ks.alias.unwrap();
        let other = if first == "client" {
            "second"
        } else {
            "client"
        };
        assert_eq!(ks.skipped_key_aliases, [other]);
        assert_eq!(ks.chain[0].alias, Some(first));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for f in ["trust.jks", "client.jks", "trust.p12", "client.p12"] {
            let store = g(f);
            for n in 0..store.len() {
                let b = &store[..n];
                assert!(read_truststore(b, Jks, Some(SP)).is_err(), "{f} {n}");
                assert!(
                    read_keystore(b, Jks, Some(SP), Some(KP)).is_err(),
                    "{f} {n}"
                );
            }
        }
        let e = read_truststore(&g("trust.jks")[..100], Jks, None).unwrap_err();
        assert!(
            matches!(
                e,
                E::Truncated {
                    what: "certificate",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_truststore(&g("trust.p12")[..100], Jks, None).unwrap_err();
        assert!(matches!(e, E::Truncated { have: 96, .. }), "{e}");
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        for f in ["trust.jks", "client.jks"] {
            for i in 0..g(f).len() {
                let mut b = g(f).to_vec();
                b[i] ^= 0x5A;
                let _ = read_truststore(&b, Jks, Some(SP));
                let _ = read_keystore(&b, Jks, None, Some(KP));
            }
        }
    }

    #[test]
    fn hostile_lengths_fail_fast() {
        let head = |v: u32, n: u32| [0xFEED_FEED, v, n].map(u32::to_be_bytes).concat();
        let ts = |b: &[u8]| read_truststore(b, Jks, None).unwrap_err();
        assert!(matches!(
            ts(&head(2, u32::MAX)),
            E::Truncated { what: "entry", .. }
        ));
        assert_eq!(ts(&head(3, 0)), E::JksVersion(3));
        assert_eq!(
            ts(&[head(2, 1), 7u32.to_be_bytes().to_vec()].concat()),
            E::JksTag(7)
        );
        let entry = |ty: &[u8], len: u32| {
            let tag_alias_date = [0, 0, 0, 2, 0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0];
            let ty_len = u16::try_from(ty.len()).unwrap().to_be_bytes();
            [
                &head(2, 1),
                &tag_alias_date[..],
                &ty_len,
                ty,
                &len.to_be_bytes(),
            ]
            .concat()
        };
        let e = ts(&entry(b"X.509", 0xFFFF_FFF0)).to_string();
        assert_eq!(
            e,
            "truncated (ends at byte 0 of a 4294967280-byte certificate)"
        );
        assert_eq!(ts(&entry(b"X.500", 0)), E::CertType("X.500".into()));
        // A PFX whose MAC asks for 2^31 iterations is refused before OpenSSL spins.
        let pfx = [
            0x30, 0x11, 0x02, 0x01, 0x03, 0x30, 0x00, 0x30, 0x0A, 0x30, 0x00, 0x04, 0x00, 0x02,
            0x04, 0x7F, 0xFF, 0xFF, 0xFF,
        ];
        let e = read_truststore(&pfx, Pkcs12, Some(SP)).unwrap_err();
        assert!(e.to_string().contains("iteration"), "{e}");
    }

    #[test]
    fn no_secret_in_messages() {
        let mut errors = Vec::new();
        for pw in [SP, KP, WRONG] {
            let files = [
                ("client.jks", Jks),
                ("client.p12", Pkcs12),
                ("trust.jks", Jks),
            ];
            for (f, ty) in files.into_iter().chain([("key_enc.pem", Pem)]) {
                for (sp, kp) in [
                    (Some(pw), Some(WRONG)),
                    (Some(WRONG), Some(pw)),
                    (None, Some(pw)),
                ] {
                    errors.extend(read_keystore(g(f), ty, sp, kp).err());
                    errors.extend(read_truststore(g(f), ty, kp).err());
                }
            }
        }
        assert!(errors.len() > 10);
        for e in &errors {
            let text = format!("{e} {e:?}");
            assert!(
                ![SP, KP, WRONG].iter().any(|pw| text.contains(pw)),
                "{text}"
            );
        }
        let ks = read_keystore(g("client.jks"), Jks, Some(SP), Some(KP)).unwrap();
        let dbg = format!("{ks:?}");
        assert!(!dbg.contains(ks.key_pem.lines().nth(1).unwrap()) && !dbg.contains("PRIVATE"));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(prefix in 0usize..4, body in prop::collection::vec(any::<u8>(), 0..1024)) {
            let prefixes: [&[u8]; 4] = [
                b"",
                &[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1],
                &[0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03],
                b"-----BEGIN CERTIFICATE-----\n",
            ];
            let b = [prefixes[prefix], &body].concat();
            for ty in [Jks, Pkcs12, Pem] {
                let _ = read_truststore(&b, ty, None);
                let _ = read_truststore(&b, ty, Some(SP));
                let _ = read_keystore(&b, ty, None, Some(KP));
                let _ = read_keystore(&b, ty, Some(SP), None);
            }
        }
    }
}
