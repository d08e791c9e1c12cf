//! TLS material for one test run: a CA, a broker certificate for `localhost` / `127.0.0.1` and a
//! client certificate, written in every form a Kafka user meets (PEM, PKCS#12 and JKS), so tests
//! can configure strait the way an MM2 file does with each kind of store.
//!
//! Keys and certificates come from OpenSSL (the crate the build already has); the JKS files from
//! the JDK's `keytool`, which Apache Kafka needs anyway, so the stores are exactly what Java
//! writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509NameRef, X509};

/// The files of one run's PKI. Every store is protected by [`Pki::password`].
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    password: String,
}

/// Which file a client store is in, for tests that configure strait one way or another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreForm {
    /// `ssl.truststore.type = PEM` (KIP-651) with the CA file; keystore as a PEM file.
    Pem,
    /// Java's `JKS`, MM2's default store type.
    Jks,
    /// `PKCS12`, the JDK's default since Java 9.
    Pkcs12,
}

impl Pki {
    /// Generate everything under `dir` (created if missing). `keytool` is `java_home/bin/keytool`.
    pub(crate) fn generate(dir: &Path, keytool: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let password = super::random_token(16);
        let pki = Self {
            dir: dir.to_path_buf(),
            password,
        };
        pki.write(keytool)
            .map_err(|e| format!("generating test certificates: {e}"))?;
        Ok(pki)
    }

    /// The password of every store, and of the keys in them.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The CA certificate (PEM): what a client trusts.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The broker's key and certificate chain (PKCS#12).
    pub fn broker_p12(&self) -> PathBuf {
        self.dir.join("broker.p12")
    }

    /// A truststore holding the CA, in `form`.
    pub fn truststore(&self, form: StoreForm) -> PathBuf {
        self.dir.join(match form {
            StoreForm::Pem => "ca.pem",
            StoreForm::Jks => "truststore.jks",
            StoreForm::Pkcs12 => "truststore.p12",
        })
    }

    /// The client's key and certificate chain, in `form` (PEM: key then chain in one file).
    pub fn keystore(&self, form: StoreForm) -> PathBuf {
        self.dir.join(match form {
            StoreForm::Pem => "client-keystore.pem",
            StoreForm::Jks => "client.jks",
            StoreForm::Pkcs12 => "client.p12",
        })
    }

    /// The client's certificate and key as separate PEM files (librdkafka's own settings).
    pub fn client_pem(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("client.pem"), self.dir.join("client.key"))
    }

    /// A CA certificate unrelated to this run's (PEM), for tests of a client that trusts the
    /// wrong authority.
    pub fn write_unrelated_ca(path: &Path) -> Result<(), String> {
        let (_, other) = ca().map_err(|e| e.to_string())?;
        let pem = other.to_pem().map_err(|e| e.to_string())?;
        std::fs::write(path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn write(&self, keytool: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let (ca_key, ca) = ca()?;
        let (broker_key, broker) = leaf(&ca_key, &ca, "localhost", true)?;
        let (client_key, client) = leaf(&ca_key, &ca, "strait-client", false)?;
        let put = |name: &str, bytes: &[u8]| std::fs::write(self.dir.join(name), bytes);
        put("ca.pem", &ca.to_pem()?)?;
        put(
            "broker.p12",
            &p12(&broker_key, &broker, &ca, &self.password)?,
        )?;
        put(
            "client.p12",
            &p12(&client_key, &client, &ca, &self.password)?,
        )?;
        let chain = [client.to_pem()?, ca.to_pem()?].concat();
        let key = client_key.private_key_to_pem_pkcs8()?;
        put("client.pem", &chain)?;
        put("client.key", &key)?;
        put("client-keystore.pem", &[key, chain].concat())?;
        let pw = self.password.as_str();
        let dir = self.dir.to_str().ok_or("the PKI directory is not UTF-8")?;
        // keytool: the CA as a trusted entry (JKS and PKCS#12), the client's key entry as JKS.
        for (store, kind) in [("truststore.jks", "JKS"), ("truststore.p12", "PKCS12")] {
            keytool_run(
                keytool,
                &[
                    "-importcert",
                    "-noprompt",
                    "-alias",
                    "ca",
                    "-file",
                    &format!("{dir}/ca.pem"),
                    "-keystore",
                    &format!("{dir}/{store}"),
                    "-storetype",
                    kind,
                    "-storepass",
                    pw,
                ],
            )?;
        }
        keytool_run(
            keytool,
            &[
                "-importkeystore",
                "-noprompt",
                "-srckeystore",
                &format!("{dir}/client.p12"),
                "-srcstoretype",
                "PKCS12",
                "-srcstorepass",
                pw,
                "-destkeystore",
                &format!("{dir}/client.jks"),
                "-deststoretype",
                "JKS",
                "-deststorepass",
                pw,
                "-destkeypass",
                pw,
            ],
        )?;
        Ok(())
    }
}

fn keytool_run(keytool: &Path, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new(keytool)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", keytool.display()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref();
        return Err(format!("keytool {} failed: {}", args[0], text.trim()).into());
    }
    Ok(())
}

fn key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn name(cn: &str) -> Result<X509Name, openssl::error::ErrorStack> {
    let mut n = X509Name::builder()?;
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "strait tests")?;
    n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(n.build())
}

fn builder(
    subject: &X509NameRef,
    issuer: &X509NameRef,
    key: &PKey<Private>,
) -> Result<openssl::x509::X509Builder, openssl::error::ErrorStack> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    // Valid from yesterday (so clock differences never matter) for a year.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (from, to) = (
        Asn1Time::from_unix(now - 86_400)?,
        Asn1Time::days_from_now(365)?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    Ok(b)
}

fn ca() -> Result<(PKey<Private>, X509), openssl::error::ErrorStack> {
    let key = key()?;
    let n = name("strait test CA")?;
    let mut b = builder(&n, &n, &key)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key, b.build()))
}

fn leaf(
    ca_key: &PKey<Private>,
    ca: &X509,
    cn: &str,
    server: bool,
) -> Result<(PKey<Private>, X509), openssl::error::ErrorStack> {
    let key = key()?;
    let subject = name(cn)?;
    let mut b = builder(&subject, ca.subject_name(), &key)?;
    b.append_extension(BasicConstraints::new().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_agreement()
            .build()?,
    )?;
    let mut eku = ExtendedKeyUsage::new();
    eku.client_auth();
    if server {
        eku.server_auth();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(san)?;
    }
    b.append_extension(eku.build()?)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok((key, b.build()))
}

fn p12(
    key: &PKey<Private>,
    cert: &X509,
    ca: &X509,
    password: &str,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut chain = Stack::new()?;
    chain.push(ca.clone())?;
    Pkcs12::builder()
        .name("strait")
        .pkey(key)
        .cert(cert)
        .ca(chain)
        .build2(password)?
        .to_der()
}
