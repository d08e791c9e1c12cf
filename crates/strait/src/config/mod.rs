//! MirrorMaker 2 properties files -> typed configuration.

pub mod properties;
