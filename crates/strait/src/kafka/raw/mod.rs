//! strait's own Kafka protocol client, for the passthrough data path (issue 19).
//!
//! librdkafka's consumer hands out records and its producer batches and compresses them again:
//! a copy costs a decompression, a re-encoding and a compression per record. Passthrough
//! instead fetches record batches from the source and produces them to the target as the bytes
//! they are, never decompressed, and for that strait speaks the protocol itself. The messages
//! are the `kafka-protocol` crate's; this module adds the connection to one broker, configured
//! from the same [`Endpoint`](crate::kafka::Endpoint) as the librdkafka clients: TLS and SASL
//! (PLAIN, SCRAM) as librdkafka reads their properties, version negotiation, framing,
//! pipelined requests and timeouts. What it cannot serve (GSSAPI, OAUTHBEARER, OpenSSL engines,
//! keystores left to librdkafka) `unsupported` says in one sentence, so that a flow can keep
//! librdkafka's data path for that cluster and say why.

mod conn;
mod sasl;
mod tls;

pub(crate) use conn::{error_name, unsupported};
pub use conn::{ApiRequest, Conn, Error, ErrorKind};
