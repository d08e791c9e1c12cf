//! Kafka config providers, as MirrorMaker 2 resolves them: `config.providers = file, env, dir`
//! with `config.providers.<name>.class` naming Kafka's `FileConfigProvider`,
//! `EnvVarConfigProvider` or `DirectoryConfigProvider`, and `${name:path:key}` references in
//! any value. This is how Kubernetes-mounted secrets reach MM2, so a drop-in must read them the
//! same way.
//!
//! Parsing the declarations and the references is pure; [`Resolver`] does the reading (files,
//! directories, the environment). One deliberate difference: MM2 leaves a reference it cannot
//! resolve in the value as written and fails later (a password `${file:...}` that the broker
//! refuses); strait says so at once, naming the key and the provider, never the value.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The three providers Kafka ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// `FileConfigProvider`: `${name:path:key}` is `key` of the properties file at `path`.
    File,
    /// `EnvVarConfigProvider`: `${name:VAR}` is environment variable `VAR`.
    Env,
    /// `DirectoryConfigProvider`: `${name:dir:file}` is the whole text of file `file` in `dir`.
    Dir,
}

impl ProviderKind {
    /// The Java class a declaration may name (full or simple name).
    pub fn from_class(class: &str) -> Option<Self> {
        match class.trim().rsplit('.').next().unwrap_or("") {
            "FileConfigProvider" => Some(Self::File),
            "EnvVarConfigProvider" => Some(Self::Env),
            "DirectoryConfigProvider" => Some(Self::Dir),
            _ => None,
        }
    }

    /// The simple Java class name, for messages and `strait check`.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::File => "FileConfigProvider",
            Self::Env => "EnvVarConfigProvider",
            Self::Dir => "DirectoryConfigProvider",
        }
    }
}

/// One declared provider with its `param.*` settings.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The name listed in `config.providers`, as references write it (`${name:...}`).
    pub name: String,
    /// None: a class strait cannot load (its Java name is in `class`).
    pub kind: Option<ProviderKind>,
    /// `config.providers.<name>.class`, trimmed.
    pub class: String,
    /// `param.allowed.paths` (File and Dir): only files under these directories may be read.
    pub allowed_paths: Option<Vec<PathBuf>>,
    /// `param.allowlist.pattern` (Env): only variables whose whole name matches.
    pub env_allowlist: Option<String>,
}

/// The providers a file declares, by name.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    /// Providers with a `.class`, by name.
    pub declared: BTreeMap<String, Provider>,
    /// Names listed in `config.providers` without a `.class` (Kafka skips them).
    pub without_class: Vec<String>,
}

impl Providers {
    /// Read `config.providers` and its `config.providers.<name>.*` keys from a key lookup.
    pub fn declare<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        let mut out = Self::default();
        let Some(list) = get("config.providers") else {
            return out;
        };
        for name in super::filter::parse_list(list) {
            if name.is_empty() {
                continue;
            }
            let prefix = format!("config.providers.{name}");
            let Some(class) = get(&format!("{prefix}.class")) else {
                out.without_class.push(name);
                continue;
            };
            let param = |p: &str| get(&format!("{prefix}.param.{p}"));
            let allowed_paths = param("allowed.paths").map(|v| {
                super::filter::parse_list(v)
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| normalize(Path::new(&p)))
                    .collect()
            });
            out.declared.insert(
                name.clone(),
                Provider {
                    name,
                    kind: ProviderKind::from_class(class),
                    class: class.trim().to_string(),
                    allowed_paths,
                    env_allowlist: param("allowlist.pattern").map(str::to_string),
                },
            );
        }
        out
    }
}

/// One `${provider:path:key}` in a value (`path` is empty for `${env:NAME}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Byte range of the whole `${...}` in the value.
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// The provider name, before the first `:`.
    pub provider: String,
    /// File (File) or directory (Dir) to read; empty when the reference has only one `:`.
    pub path: String,
    /// Key in the file (File), file name in the directory (Dir) or variable name (Env).
    pub key: String,
}

impl Reference {
    /// The reference as written (names a file and a key, never a secret).
    pub fn text(&self) -> String {
        if self.path.is_empty() {
            format!("${{{}:{}}}", self.provider, self.key)
        } else {
            format!("${{{}:{}:{}}}", self.provider, self.path, self.key)
        }
    }
}

/// Kafka's `ConfigTransformer.DEFAULT_PATTERN`, `\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`, matched by
/// hand: the provider is everything up to the first `:`; then, if another `:` comes before the
/// `}`, the path runs to it; the key is the rest.
pub fn references(value: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = value[from..].find("${") {
        let start = from + off;
        let body_start = start + 2;
        let Some(close) = value[body_start..].find('}') else {
            break;
        };
        let body = &value[body_start..body_start + close];
        let Some((provider, rest)) = body.split_once(':') else {
            // No `:` before this `}`: not a reference; look again after the `${`.
            from = body_start;
            continue;
        };
        let (path, key) = match rest.split_once(':') {
            Some((p, k)) => (p, k),
            None => ("", rest),
        };
        out.push(Reference {
            start,
            end: body_start + close + 1,
            provider: provider.to_string(),
            path: path.to_string(),
            key: key.to_string(),
        });
        from = body_start + close + 1;
    }
    out
}

/// Why a reference could not be resolved. `Display` is the cause only; the caller names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A referenced provider's class is not one of Kafka's three (a custom or vault provider).
    #[error("provider `{provider}` is declared with class `{class}`, which strait cannot load; it runs Kafka's FileConfigProvider, EnvVarConfigProvider and DirectoryConfigProvider (resolve the secret into a file and use `file` or `dir`)")]
    UnsupportedClass {
        /// The provider's name.
        provider: String,
        /// Its `.class`, as written.
        class: String,
    },
    /// The file is there but cannot be used: no permission, not UTF-8 (Dir), a line that is
    /// not valid properties syntax (File).
    #[error("provider `{provider}` cannot read {path}: {reason}")]
    Unreadable {
        /// The provider's name.
        provider: String,
        /// The file it tried to read.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// The File provider's file, or the Dir provider's directory, does not exist.
    #[error("provider `{provider}`: {path} does not exist on this machine")]
    Missing {
        /// The provider's name.
        provider: String,
        /// The file or directory, as referenced.
        path: String,
    },
    /// The file has no such key (File), or the directory no such file (Dir).
    #[error("provider `{provider}`: {path} has no key `{key}`")]
    NoKey {
        /// The provider's name.
        provider: String,
        /// The file or directory, as referenced.
        path: String,
        /// The key or file name asked for.
        key: String,
    },
    /// The referenced environment variable is not set (or not Unicode).
    #[error("provider `{provider}`: environment variable `{name}` is not set")]
    NoEnv {
        /// The provider's name.
        provider: String,
        /// The variable.
        name: String,
    },
    /// The path is not under any of the provider's `param.allowed.paths` (or is relative).
    #[error("provider `{provider}`: {path} is outside its `allowed.paths`")]
    NotAllowed {
        /// The provider's name.
        provider: String,
        /// The path, as referenced.
        path: String,
    },
    /// The variable's name does not match the provider's `param.allowlist.pattern`.
    #[error("provider `{provider}`: environment variable `{name}` does not match its `allowlist.pattern`")]
    EnvNotAllowed {
        /// The provider's name.
        provider: String,
        /// The variable.
        name: String,
    },
    /// An Env reference with a path (`${env:path:VAR}`), which Kafka's provider cannot serve.
    #[error(
        "provider `{provider}` (EnvVarConfigProvider) takes no path: write `${{{provider}:NAME}}`"
    )]
    EnvWithPath {
        /// The provider's name.
        provider: String,
    },
    /// The Env provider's `param.allowlist.pattern` does not compile.
    #[error("provider `{provider}`: {pattern} in `allowlist.pattern` is not a valid regex")]
    BadAllowlist {
        /// The provider's name.
        provider: String,
        /// The pattern, as written.
        pattern: String,
    },
}

impl ProviderError {
    /// A file or directory that is simply not on this machine (`strait check` run away from the
    /// deployment): a warning there, an error when strait is about to connect.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::NoEnv { .. })
    }
}

/// Resolves references with the declared providers, caching each file it reads.
pub struct Resolver<'p> {
    providers: &'p Providers,
    files: BTreeMap<String, Result<super::properties::Properties, ProviderError>>,
}

/// A value with its references replaced, and the providers that supplied them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The value with each resolved reference replaced by what its provider read.
    pub value: String,
    /// Names of the providers that supplied part of it, in order of first use.
    pub providers: Vec<String>,
    /// References to providers that are not declared: left as written, as MM2 does.
    pub undeclared: Vec<String>,
}

impl<'p> Resolver<'p> {
    /// A resolver over `providers`, with no file read yet.
    pub fn new(providers: &'p Providers) -> Self {
        Self {
            providers,
            files: BTreeMap::new(),
        }
    }

    /// Replace every reference to a declared provider in `value`.
    pub fn resolve(&mut self, value: &str) -> Result<Resolved, ProviderError> {
        let refs = references(value);
        let mut out = String::with_capacity(value.len());
        let mut providers = Vec::new();
        let mut undeclared = Vec::new();
        let mut at = 0;
        for r in refs {
            let Some(p) = self.providers.declared.get(&r.provider) else {
                undeclared.push(r.provider.clone());
                continue;
            };
            let replacement = self.lookup(p, &r)?;
            out.push_str(&value[at..r.start]);
            out.push_str(&replacement);
            at = r.end;
            if !providers.contains(&p.name) {
                providers.push(p.name.clone());
            }
        }
        out.push_str(&value[at..]);
        Ok(Resolved {
            value: out,
            providers,
            undeclared,
        })
    }

    fn lookup(&mut self, p: &Provider, r: &Reference) -> Result<String, ProviderError> {
        let provider = p.name.clone();
        let Some(kind) = p.kind else {
            return Err(ProviderError::UnsupportedClass {
                provider,
                class: p.class.clone(),
            });
        };
        match kind {
            ProviderKind::Env => {
                if !r.path.is_empty() {
                    return Err(ProviderError::EnvWithPath { provider });
                }
                if let Some(pattern) = &p.env_allowlist {
                    let re =
                        fancy_regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
                            ProviderError::BadAllowlist {
                                provider: provider.clone(),
                                pattern: pattern.clone(),
                            }
                        })?;
                    if !re.is_match(&r.key).unwrap_or(false) {
                        return Err(ProviderError::EnvNotAllowed {
                            provider,
                            name: r.key.clone(),
                        });
                    }
                }
                std::env::var(&r.key).map_err(|_| ProviderError::NoEnv {
                    provider,
                    name: r.key.clone(),
                })
            }
            ProviderKind::File => {
                check_allowed(p, Path::new(&r.path))?;
                let props = self
                    .files
                    .entry(r.path.clone())
                    .or_insert_with(|| read_properties(&provider, &r.path))
                    .clone()?;
                props
                    .get(&r.key)
                    .map(str::to_string)
                    .ok_or_else(|| ProviderError::NoKey {
                        provider,
                        path: r.path.clone(),
                        key: r.key.clone(),
                    })
            }
            ProviderKind::Dir => {
                let file = Path::new(&r.path).join(&r.key);
                check_allowed(p, &file)?;
                // Kafka reads only regular files directly in the directory.
                if r.key.contains('/') || r.key.is_empty() {
                    return Err(ProviderError::NoKey {
                        provider,
                        path: r.path.clone(),
                        key: r.key.clone(),
                    });
                }
                if !Path::new(&r.path).exists() {
                    return Err(ProviderError::Missing {
                        provider,
                        path: r.path.clone(),
                    });
                }
                match super::stores_io::read_capped(&file) {
                    Ok(bytes) => String::from_utf8(bytes).map_err(|_| ProviderError::Unreadable {
                        provider,
                        path: file.display().to_string(),
                        reason: "it is not UTF-8 text".into(),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(ProviderError::NoKey {
                            provider,
                            path: r.path.clone(),
                            key: r.key.clone(),
                        })
                    }
                    Err(e) => Err(ProviderError::Unreadable {
                        provider,
                        path: file.display().to_string(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
}

fn read_properties(
    provider: &str,
    path: &str,
) -> Result<super::properties::Properties, ProviderError> {
    let bytes = super::stores_io::read_capped(Path::new(path)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ProviderError::Missing {
                provider: provider.to_string(),
                path: path.to_string(),
            }
        } else {
            ProviderError::Unreadable {
                provider: provider.to_string(),
                path: path.to_string(),
                reason: e.to_string(),
            }
        }
    })?;
    let text = super::properties::decode_latin1(&bytes);
    super::properties::Properties::parse(&text).map_err(|e| ProviderError::Unreadable {
        provider: provider.to_string(),
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Kafka's `allowed.paths`: the file must lie under one of them once `.`/`..` are resolved.
fn check_allowed(p: &Provider, path: &Path) -> Result<(), ProviderError> {
    let Some(allowed) = &p.allowed_paths else {
        return Ok(());
    };
    let path_n = normalize(path);
    if path.is_absolute() && allowed.iter().any(|a| path_n.starts_with(a)) {
        Ok(())
    } else {
        Err(ProviderError::NotAllowed {
            provider: p.name.clone(),
            path: path.display().to_string(),
        })
    }
}

/// Lexical normalisation (`.` and `..` removed), as `Path.normalize()` in Java.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decl(pairs: &[(&str, &str)]) -> Providers {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Providers::declare(|k| map.get(k).map(String::as_str))
    }

    #[test]
    fn references_as_kafka_matches_them() {
        let r = references("a ${file:/etc/x.properties:pw} b ${env:HOME} ${dir:/s:a:b}");
        assert_eq!(r.len(), 3);
        assert_eq!(
            (
                r[0].provider.as_str(),
                r[0].path.as_str(),
                r[0].key.as_str()
            ),
            ("file", "/etc/x.properties", "pw")
        );
        assert_eq!((r[1].provider.as_str(), r[1].path.as_str()), ("env", ""));
        assert_eq!(r[1].key, "HOME");
        // Non-greedy: the path stops at the second `:`, the key takes the rest.
        assert_eq!((r[2].path.as_str(), r[2].key.as_str()), ("/s", "a:b"));
        // `${VAR}` has no provider: not a reference (MM2 leaves it alone).
        assert!(references("${SOURCE}:9092").is_empty());
        assert!(references("${unterminated:x").is_empty());
        assert_eq!(references("${a}${b:c}")[0].provider, "b");
    }

    #[test]
    fn declarations_and_classes() {
        let p = decl(&[
            ("config.providers", "file, env,dir,vault,bare"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
            ),
            (
                "config.providers.file.param.allowed.paths",
                "/etc/a, /etc/b/../c",
            ),
            ("config.providers.env.class", "EnvVarConfigProvider"),
            (
                "config.providers.dir.class",
                "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
            ),
            ("config.providers.vault.class", "io.example.VaultProvider"),
        ]);
        assert_eq!(p.declared["file"].kind, Some(ProviderKind::File));
        assert_eq!(
            p.declared["file"].allowed_paths.as_ref().unwrap(),
            &vec![PathBuf::from("/etc/a"), PathBuf::from("/etc/c")]
        );
        assert_eq!(p.declared["env"].kind, Some(ProviderKind::Env));
        assert_eq!(p.declared["dir"].kind, Some(ProviderKind::Dir));
        assert_eq!(p.declared["vault"].kind, None);
        assert_eq!(p.without_class, vec!["bare".to_string()]);
    }

    #[test]
    fn file_env_and_dir_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let props = dir.path().join("secrets.properties");
        std::fs::write(&props, "password = s3cret\nuser=alice\n").unwrap();
        let sdir = dir.path().join("mounted");
        std::fs::create_dir(&sdir).unwrap();
        std::fs::write(sdir.join("token"), "t0ken").unwrap();
        std::env::set_var("STRAIT_PROVIDER_TEST_VAR", "from-env");
        let p = decl(&[
            ("config.providers", "file,env,dir"),
            ("config.providers.file.class", "FileConfigProvider"),
            ("config.providers.env.class", "EnvVarConfigProvider"),
            ("config.providers.dir.class", "DirectoryConfigProvider"),
        ]);
        let mut r = Resolver::new(&p);
        let v = format!(
            "u=${{file:{0}:user}} p=${{file:{0}:password}} e=${{env:STRAIT_PROVIDER_TEST_VAR}} d=${{dir:{1}:token}} ${{HOME}} ${{other:x}}",
            props.display(),
            sdir.display()
        );
        let out = r.resolve(&v).unwrap();
        assert_eq!(
            out.value,
            "u=alice p=s3cret e=from-env d=t0ken ${HOME} ${other:x}"
        );
        assert_eq!(out.providers, vec!["file", "env", "dir"]);
        assert_eq!(out.undeclared, vec!["other"]);

        let e = r
            .resolve(&format!("${{file:{}:nokey}}", props.display()))
            .unwrap_err();
        assert!(e.to_string().contains("no key `nokey`"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        let e = r
            .resolve("${file:/nonexistent/x.properties:k}")
            .unwrap_err();
        assert!(e.is_missing(), "{e}");
        let e = r.resolve("${env:STRAIT_SURELY_UNSET_VAR}").unwrap_err();
        assert!(e.to_string().contains("STRAIT_SURELY_UNSET_VAR"), "{e}");
        let e = r
            .resolve(&format!("${{dir:{}:missing}}", sdir.display()))
            .unwrap_err();
        assert!(e.to_string().contains("no key `missing`"), "{e}");
    }

    #[test]
    fn allowed_paths_and_allowlist_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::create_dir(&ok).unwrap();
        std::fs::write(ok.join("s.properties"), "k=v\n").unwrap();
        std::fs::write(dir.path().join("outside.properties"), "k=v\n").unwrap();
        std::env::set_var("STRAIT_ALLOWED_X", "1");
        let allowed = ok.display().to_string();
        let p = decl(&[
            ("config.providers", "file,env"),
            ("config.providers.file.class", "FileConfigProvider"),
            ("config.providers.file.param.allowed.paths", &allowed),
            ("config.providers.env.class", "EnvVarConfigProvider"),
            (
                "config.providers.env.param.allowlist.pattern",
                "STRAIT_ALLOWED_.*",
            ),
        ]);
        let mut r = Resolver::new(&p);
        assert_eq!(
            r.resolve(&format!("${{file:{allowed}/s.properties:k}}"))
                .unwrap()
                .value,
            "v"
        );
        let sneaky = format!("${{file:{allowed}/../outside.properties:k}}");
        assert!(matches!(
            r.resolve(&sneaky),
            Err(ProviderError::NotAllowed { .. })
        ));
        assert_eq!(r.resolve("${env:STRAIT_ALLOWED_X}").unwrap().value, "1");
        assert!(matches!(
            r.resolve("${env:HOME}"),
            Err(ProviderError::EnvNotAllowed { .. })
        ));
    }

    #[test]
    fn unsupported_class_names_itself_and_the_alternatives() {
        let p = decl(&[
            ("config.providers", "vault"),
            (
                "config.providers.vault.class",
                "io.example.VaultConfigProvider",
            ),
        ]);
        let e = Resolver::new(&p)
            .resolve("${vault:secret/kafka:pw}")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("io.example.VaultConfigProvider"), "{msg}");
        assert!(msg.contains("FileConfigProvider"), "{msg}");
    }

    proptest! {
        /// Any value: references never overlap and lie inside the value; resolving with no
        /// declared provider changes nothing.
        #[test]
        fn references_are_well_formed(v in "[ -~]{0,60}") {
            let refs = references(&v);
            let mut last = 0;
            for r in &refs {
                prop_assert!(r.start >= last && r.end <= v.len() && r.start < r.end);
                let whole = &v[r.start..r.end];
                prop_assert!(whole.starts_with("${") && whole.ends_with('}'), "{:?}", whole);
                last = r.end;
            }
            let none = Providers::default();
            prop_assert_eq!(Resolver::new(&none).resolve(&v).unwrap().value, v);
        }
    }
}
