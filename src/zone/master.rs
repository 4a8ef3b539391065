//! RFC 1035 master files: import into Roundel's TOML, export from it.

use std::path::Path;

use super::Zone;

/// Converts the master file at `path` into Roundel zone-file text.
pub fn import_file(path: &Path, _origin: Option<&str>) -> Result<String, String> {
    Err(format!("{}: import is not implemented yet", path.display()))
}

/// The zone as master-file text.
pub fn export(_zone: &Zone) -> String {
    String::new()
}
