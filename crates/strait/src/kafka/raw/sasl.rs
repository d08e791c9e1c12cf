//! The SASL logins the raw client performs itself: PLAIN (RFC 4616) and SCRAM-SHA-256/512
//! (RFC 5802, RFC 7677), built on OpenSSL's primitives (the same OpenSSL librdkafka links), so
//! no other crypto crate comes in. Kafka carries each message in a SaslAuthenticate request.

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// A login mechanism this client performs (librdkafka's `sasl.mechanisms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// Username and password in clear (inside TLS, one hopes).
    Plain,
    /// SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl Mechanism {
    /// The mechanism named `name` (case-insensitive, as brokers list them), if this client
    /// performs it.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Self::Plain),
            "SCRAM-SHA-256" => Some(Self::ScramSha256),
            "SCRAM-SHA-512" => Some(Self::ScramSha512),
            _ => None,
        }
    }

    /// The name brokers know it by.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn digest(self) -> Option<MessageDigest> {
        match self {
            Self::Plain => None,
            Self::ScramSha256 => Some(MessageDigest::sha256()),
            Self::ScramSha512 => Some(MessageDigest::sha512()),
        }
    }
}

/// PLAIN's one message: no authorization id, then the user and the password, NUL-separated.
pub(crate) fn plain(user: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(2 + user.len() + password.len());
    m.push(0);
    m.extend_from_slice(user.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

/// Iteration counts above this are refused: Kafka allows at most 16384, and a peer asking for
/// billions would hold the caller's thread for minutes.
const MAX_ITERATIONS: u32 = 1_000_000;

/// One SCRAM exchange from the client's side: client-first, then client-final from the
/// server-first, then the check of the server's signature, which proves that the broker knows
/// the password too (a man in the middle does not).
///
/// No `Debug`: it holds the password until the client-final message is made.
pub(crate) struct Scram {
    digest: MessageDigest,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// An exchange for `user`, with a fresh random nonce. `None` for PLAIN.
    pub(crate) fn new(
        mechanism: Mechanism,
        user: &str,
        password: &str,
    ) -> Option<Result<Self, ErrorStack>> {
        let digest = mechanism.digest()?;
        let mut raw = [0u8; 24];
        Some(
            openssl::rand::rand_bytes(&mut raw)
                .map(|()| Self::with_nonce(digest, user, password, &b64(&raw))),
        )
    }

    fn with_nonce(digest: MessageDigest, user: &str, password: &str, nonce: &str) -> Self {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            digest,
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first message: no channel binding, no authorization id.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message answering `server_first`, with the proof that we know the
    /// password. Errors describe a server-first message this client cannot accept.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "the server-first SCRAM message is not UTF-8".to_string())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for (i, attr) in text.split(',').enumerate() {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            match k {
                "m" if i == 0 => {
                    return Err("the broker requires a SCRAM extension this client lacks".into())
                }
                "e" => return Err(format!("the broker answered with SCRAM error `{v}`")),
                "r" => nonce = Some(v),
                "s" => salt = Some(v),
                "i" => iterations = Some(v),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "the server-first SCRAM message lacks a nonce, salt or iteration count: `{text}`"
            ));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the broker's SCRAM nonce does not extend ours".into());
        }
        let salt = openssl::base64::decode_block(salt)
            .map_err(|_| "the broker's SCRAM salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or_else(|| format!("the broker asks for {iterations} SCRAM iterations"))?;

        let crypto = |e: ErrorStack| format!("SCRAM computation failed in OpenSSL: {e}");
        let mut salted = vec![0u8; self.digest.size()];
        openssl::pkcs5::pbkdf2_hmac(
            self.password.as_bytes(),
            &salt,
            iterations as usize,
            self.digest,
            &mut salted,
        )
        .map_err(crypto)?;
        // The password is no longer needed.
        self.password.clear();
        let client_key = hmac(self.digest, &salted, b"Client Key").map_err(crypto)?;
        let stored_key = hash(self.digest, &client_key).map_err(crypto)?;
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_signature =
            hmac(self.digest, &stored_key, auth_message.as_bytes()).map_err(crypto)?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(self.digest, &salted, b"Server Key").map_err(crypto)?;
        self.server_signature =
            Some(hmac(self.digest, &server_key, auth_message.as_bytes()).map_err(crypto)?);
        Ok(format!("{without_proof},p={}", b64(&proof)).into_bytes())
    }

    /// Check the server-final message: the broker's signature must be the one only a holder of
    /// the password could make. Errors say why the login cannot be trusted.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let Some(want) = &self.server_signature else {
            return Err("a server-final SCRAM message came before client-final was sent".into());
        };
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused the login: {e}"));
        }
        let got = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| openssl::base64::decode_block(v).ok())
            .ok_or_else(|| "the server-final SCRAM message has no signature".to_string())?;
        if got.len() == want.len() && openssl::memcmp::eq(&got, want) {
            Ok(())
        } else {
            Err("the broker's SCRAM signature is wrong: it does not know the password (is something between strait and the broker?)".into())
        }
    }
}

fn hmac(digest: MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let key = PKey::hmac(key)?;
    let mut signer = Signer::new(digest, &key)?;
    signer.update(data)?;
    signer.sign_to_vec()
}

fn b64(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_by_name() {
        assert_eq!(
            Mechanism::parse("scram-sha-512"),
            Some(Mechanism::ScramSha512)
        );
        assert_eq!(Mechanism::parse(" PLAIN "), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("GSSAPI"), None);
        assert_eq!(Mechanism::parse("OAUTHBEARER"), None);
        assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
    }

    #[test]
    fn plain_is_nul_user_nul_password() {
        assert_eq!(plain("alice", "s3cret"), b"\0alice\0s3cret".to_vec());
        assert_eq!(plain("", ""), b"\0\0".to_vec());
    }

    /// RFC 7677 section 3, byte for byte.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let mut s = Scram::with_nonce(
            MessageDigest::sha256(),
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(
            s.client_first(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec()
        );
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let forged = s
            .verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(forged.contains("signature is wrong"), "{forged}");
        let refused = s.verify_server_final(b"e=invalid-proof").unwrap_err();
        assert!(refused.contains("invalid-proof"), "{refused}");
    }

    /// The broker's side of SCRAM, from its stored credentials (as Kafka keeps them: salt,
    /// iterations, StoredKey, ServerKey): checks a client proof, signs the exchange.
    struct Server {
        digest: MessageDigest,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    }

    impl Server {
        fn new(digest: MessageDigest, password: &str, salt: &[u8], i: usize) -> Self {
            let mut salted = vec![0u8; digest.size()];
            openssl::pkcs5::pbkdf2_hmac(password.as_bytes(), salt, i, digest, &mut salted).unwrap();
            let client_key = hmac(digest, &salted, b"Client Key").unwrap();
            Self {
                digest,
                stored_key: hash(digest, &client_key).unwrap().to_vec(),
                server_key: hmac(digest, &salted, b"Server Key").unwrap(),
            }
        }

        /// server-final for `client_final`, or `None` for a wrong proof.
        fn finish(&self, auth_message: &str, proof: &[u8]) -> Option<Vec<u8>> {
            let signature = hmac(self.digest, &self.stored_key, auth_message.as_bytes()).unwrap();
            let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            (hash(self.digest, &client_key).unwrap().to_vec() == self.stored_key).then(|| {
                let v = hmac(self.digest, &self.server_key, auth_message.as_bytes()).unwrap();
                format!("v={}", b64(&v)).into_bytes()
            })
        }
    }

    /// One exchange against [`Server`] knowing `server_password`: the server's verdict on the
    /// proof, and the client's on the server's signature.
    fn exchange(client_password: &str, server_password: &str) -> Result<(), String> {
        let salt = b"0123456789abcdef";
        let server = Server::new(MessageDigest::sha512(), server_password, salt, 4096);
        let mut c = Scram::new(Mechanism::ScramSha512, "ad=m,in", client_password)
            .unwrap()
            .unwrap();
        let first = String::from_utf8(c.client_first()).unwrap();
        let bare = first.strip_prefix("n,,").unwrap().to_string();
        assert!(bare.starts_with("n=ad=3Dm=2Cin,r="), "{bare}");
        let client_nonce = bare.split_once(",r=").unwrap().1;
        let server_first = format!("r={client_nonce}srv-nonce,s={},i=4096", b64(salt));
        let fin = String::from_utf8(c.client_final(server_first.as_bytes())?).unwrap();
        let (without_proof, proof) = fin.split_once(",p=").unwrap();
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let proof = openssl::base64::decode_block(proof).unwrap();
        let last = server
            .finish(&auth_message, &proof)
            .ok_or_else(|| "server: invalid proof".to_string())?;
        c.verify_server_final(&last)
    }

    #[test]
    fn scram_sha_512_round_trip() {
        exchange("hunter2", "hunter2").unwrap();
        assert_eq!(
            exchange("not-it", "hunter2").unwrap_err(),
            "server: invalid proof"
        );
    }

    #[test]
    fn scram_refuses_a_nonce_it_did_not_start_and_absurd_iterations() {
        let mut s = Scram::with_nonce(MessageDigest::sha256(), "u", "p", "abc");
        let e = s.client_final(b"r=xyzdef,s=AAAA,i=4096").unwrap_err();
        assert!(e.contains("nonce"), "{e}");
        let e = s.client_final(b"r=abc,s=AAAA,i=4096").unwrap_err();
        assert!(e.contains("nonce"), "{e}");
        let e = s.client_final(b"r=abcdef,s=AAAA,i=4000000000").unwrap_err();
        assert!(e.contains("iterations"), "{e}");
        let e = s.client_final(b"r=abcdef,s=AAAA,i=0").unwrap_err();
        assert!(e.contains("iterations"), "{e}");
        let e = s.client_final(b"m=ext,r=abcdef,s=AAAA,i=4096").unwrap_err();
        assert!(e.contains("extension"), "{e}");
        let e = s.client_final(b"r=abcdef,i=4096").unwrap_err();
        assert!(e.contains("salt"), "{e}");
        assert!(s.verify_server_final(b"v=AAAA").is_err());
    }
}
