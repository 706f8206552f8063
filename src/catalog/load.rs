//! Reading catalog files: the built-in layer, then directories in order.

use super::{
    read_text, Catalog, CatalogError, Diagnostic, DiagnosticKind, Origin, PeerGroup, PortSetDef,
    ReadTextError, Role, SettingDef, SourceDoc, SourceText,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        /// The catalog files compiled into the binary, by file name.
        pub(super) const BUILTIN: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../config/catalog/", $name)))),*
        ];
    };
}

builtin![
    "sources.toml",
    "veeam-common.toml",
    "evault.toml",
    "veeam-data-mover.toml",
    "veeam-repository.toml",
    "veeam-proxy.toml",
    "veeam-gateway.toml",
    "veeam-mount-server.toml",
    "veeam-agent-linux.toml",
    "veeam-backup-server.toml",
    "veeam-nutanix.toml",
    "veeam-guest.toml",
    "veeam-log-shipping.toml",
    "veeam-cdp-proxy.toml",
    "veeam-cloud-connect.toml",
];

/// Parses `text` as TOML into `T`, turning errors into located diagnostics.
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    parse_toml_located(path, text, text)
}

/// [`parse_toml`] of `text`, with errors located in `original`: the same
/// text with parts blanked out byte for byte (`config::bulk`), so that
/// offsets agree but lines may not.
pub(crate) fn parse_toml_located<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    original: &str,
) -> Result<T, Diagnostic> {
    let de = toml::Deserializer::parse(text)
        .map_err(|e| Diagnostic::from_toml(path, original, &e, true))?;
    T::deserialize(de).map_err(|e| Diagnostic::from_toml(path, original, &e, false))
}

/// The layout of one catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    sources: BTreeMap<Spanned<String>, SourceDoc>,
    #[serde(default)]
    settings: BTreeMap<Spanned<String>, SettingDef>,
    #[serde(default)]
    port_sets: BTreeMap<Spanned<String>, PortSetDef>,
    #[serde(default)]
    peer_groups: BTreeMap<Spanned<String>, PeerGroup>,
    #[serde(default)]
    role: Vec<Role>,
}

/// Items that remember the file they came from.
trait Located {
    fn set_origin(&mut self, origin: Origin);
}

macro_rules! located {
    ($($t:ty),*) => {$(
        impl Located for $t {
            fn set_origin(&mut self, origin: Origin) {
                self.origin = origin;
            }
        }
    )*};
}
located!(SourceDoc, SettingDef, PortSetDef, PeerGroup, Role);

/// Merges the files of one layer into a catalog: a name may be defined once per
/// layer and replaces a definition from an earlier layer.
struct Layer<'a> {
    catalog: &'a mut Catalog,
    defined: HashSet<(&'static str, String)>,
    errors: Vec<Diagnostic>,
}

impl Layer<'_> {
    fn insert<T: Located>(
        &mut self,
        what: &'static str,
        map: fn(&mut Catalog) -> &mut BTreeMap<String, T>,
        src: &Arc<SourceText>,
        name: &Spanned<String>,
        mut item: T,
    ) {
        let key = name.get_ref().clone();
        if !self.defined.insert((what, key.clone())) {
            self.errors.push(Diagnostic::new(
                Some(src.locate(name.span())),
                DiagnosticKind::Duplicate,
                format!("{what} `{key}` is defined twice in the same catalog layer"),
            ));
            return;
        }
        item.set_origin(Origin(Some(src.clone())));
        map(self.catalog).insert(key, item);
    }

    fn add_file(&mut self, path: PathBuf, text: String) {
        let src = Arc::new(SourceText::new(path, text));
        let file: CatalogFile = match parse_toml(&src.path, &src.text) {
            Ok(f) => f,
            Err(d) => return self.errors.push(d),
        };
        for (name, item) in file.sources {
            self.insert("source", |c| &mut c.sources, &src, &name, item);
        }
        for (name, item) in file.settings {
            self.insert("setting", |c| &mut c.settings, &src, &name, item);
        }
        for (name, item) in file.port_sets {
            self.insert("port set", |c| &mut c.port_sets, &src, &name, item);
        }
        for (name, item) in file.peer_groups {
            self.insert("peer group", |c| &mut c.peer_groups, &src, &name, item);
        }
        for role in file.role {
            let name = role.id.clone();
            self.insert("role", |c| &mut c.roles, &src, &name, role);
        }
    }
}

impl Catalog {
    /// Adds one layer of files; a later layer replaces same-named items.
    fn add_layer(&mut self, files: Vec<(PathBuf, String)>) -> Result<(), CatalogError> {
        let mut layer = Layer {
            catalog: self,
            defined: HashSet::new(),
            errors: Vec::new(),
        };
        for (path, text) in files {
            layer.add_file(path, text);
        }
        match layer.errors {
            e if e.is_empty() => Ok(()),
            e => Err(CatalogError::Invalid(e)),
        }
    }

    /// The built-in layer followed by `extra` layers, validated as a whole.
    fn layered(extra: Vec<Vec<(PathBuf, String)>>) -> Result<Catalog, CatalogError> {
        let builtin = BUILTIN
            .iter()
            .map(|(name, text)| {
                (
                    PathBuf::from(format!("<builtin>/{name}")),
                    (*text).to_string(),
                )
            })
            .collect();
        let mut cat = Catalog::default();
        for layer in std::iter::once(builtin).chain(extra) {
            cat.add_layer(layer)?;
        }
        let errors = super::validate::validate(&cat);
        if errors.is_empty() {
            Ok(cat)
        } else {
            Err(CatalogError::Invalid(errors))
        }
    }

    /// The catalog compiled into the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Self::layered(Vec::new())
    }

    /// The built-in catalog extended by the `*.toml` files of each directory, in
    /// order (files within a directory by name). Missing directories are skipped.
    pub fn load(dirs: &[&Path]) -> Result<Catalog, CatalogError> {
        let layers = dirs
            .iter()
            .map(|d| read_dir_layer(d))
            .collect::<Result<_, _>>()?;
        Self::layered(layers)
    }

    /// The built-in catalog extended by one layer of in-memory files
    /// (`(path used in messages, TOML text)`), e.g. for tests and fixtures.
    pub fn with_overlay(files: &[(&Path, &str)]) -> Result<Catalog, CatalogError> {
        let layer = files
            .iter()
            .map(|(p, t)| (p.to_path_buf(), (*t).to_string()))
            .collect();
        Self::layered(vec![layer])
    }
}

/// The `*.toml` regular files of `dir`, sorted by name; none if `dir` does not exist.
fn read_dir_layer(dir: &Path) -> Result<Vec<(PathBuf, String)>, CatalogError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatalogError::Io { path, source }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| match read_text(&p, super::MAX_FILE_SIZE) {
            Ok(t) => Ok((p, t)),
            Err(ReadTextError::Io(e)) => Err(io(&p)(e)),
            Err(ReadTextError::TooLarge { size }) => Err(CatalogError::TooLarge { path: p, size }),
            Err(ReadTextError::NotUtf8(d)) => Err(CatalogError::Invalid(vec![d])),
        })
        .collect()
}
